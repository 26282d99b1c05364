build-avx2/obj/src/core/util.o: src/core/util.c src/core/core.h \
 include/takumi/core.h
src/core/core.h:
include/takumi/core.h:
