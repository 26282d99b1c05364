build-avx2/obj/src/core/quant.o: src/core/quant.c src/core/core.h \
 include/takumi/core.h src/core/quant.h
src/core/core.h:
include/takumi/core.h:
src/core/quant.h:
