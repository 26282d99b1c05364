build-scalar/obj/src/core/file.o: src/core/file.c src/core/core.h \
 include/takumi/core.h
src/core/core.h:
include/takumi/core.h:
