build-scalar/obj/src/core/error.o: src/core/error.c src/core/core.h \
 include/takumi/core.h
src/core/core.h:
include/takumi/core.h:
