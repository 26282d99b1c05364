build-avx2/obj/src/core/dtype.o: src/core/dtype.c src/core/core.h \
 include/takumi/core.h
src/core/core.h:
include/takumi/core.h:
