build-avx2/obj/src/backend/cpu/swiglu.o: src/backend/cpu/swiglu.c \
 src/backend/backend.h include/takumi/core.h src/backend/cpu/kernels.h
src/backend/backend.h:
include/takumi/core.h:
src/backend/cpu/kernels.h:
