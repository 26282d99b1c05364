build-scalar/obj/src/core/quant_avx2.o: src/core/quant_avx2.c \
 src/core/core.h include/takumi/core.h src/core/quant.h
src/core/core.h:
include/takumi/core.h:
src/core/quant.h:
