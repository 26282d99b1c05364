build-scalar/obj/src/io/gguf.o: src/io/gguf.c include/takumi/gguf.h \
 include/takumi/core.h src/core/core.h
include/takumi/gguf.h:
include/takumi/core.h:
src/core/core.h:
