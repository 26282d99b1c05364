build-scalar/obj/src/backend/cpu/matmul.o: src/backend/cpu/matmul.c \
 src/backend/backend.h include/takumi/core.h src/backend/cpu/kernels.h \
 src/core/core.h src/core/quant.h
src/backend/backend.h:
include/takumi/core.h:
src/backend/cpu/kernels.h:
src/core/core.h:
src/core/quant.h:
