build-scalar/obj/src/backend/cpu/qdot.o: src/backend/cpu/qdot.c \
 src/backend/cpu/kernels.h include/takumi/core.h src/backend/backend.h \
 src/core/core.h src/core/quant.h
src/backend/cpu/kernels.h:
include/takumi/core.h:
src/backend/backend.h:
src/core/core.h:
src/core/quant.h:
