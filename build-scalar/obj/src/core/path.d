build-scalar/obj/src/core/path.o: src/core/path.c src/core/core.h \
 include/takumi/core.h
src/core/core.h:
include/takumi/core.h:
