build-avx2/obj/src/backend/cpu/rmsnorm.o: src/backend/cpu/rmsnorm.c \
 src/backend/backend.h include/takumi/core.h src/backend/cpu/kernels.h
src/backend/backend.h:
include/takumi/core.h:
src/backend/cpu/kernels.h:
