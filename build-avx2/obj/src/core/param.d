build-avx2/obj/src/core/param.o: src/core/param.c src/core/param.h \
 include/takumi/core.h src/core/core.h
src/core/param.h:
include/takumi/core.h:
src/core/core.h:
