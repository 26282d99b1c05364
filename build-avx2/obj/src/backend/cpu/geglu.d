build-avx2/obj/src/backend/cpu/geglu.o: src/backend/cpu/geglu.c \
 src/backend/backend.h include/takumi/core.h src/backend/cpu/kernels.h
src/backend/backend.h:
include/takumi/core.h:
src/backend/cpu/kernels.h:
