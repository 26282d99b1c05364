build-scalar/obj/src/backend/cpu/fdot.o: src/backend/cpu/fdot.c \
 src/backend/cpu/kernels.h include/takumi/core.h src/backend/backend.h \
 src/core/core.h src/core/quant.h
src/backend/cpu/kernels.h:
include/takumi/core.h:
src/backend/backend.h:
src/core/core.h:
src/core/quant.h:
