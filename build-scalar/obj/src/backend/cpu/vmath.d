build-scalar/obj/src/backend/cpu/vmath.o: src/backend/cpu/vmath.c \
 src/backend/cpu/kernels.h include/takumi/core.h src/backend/backend.h
src/backend/cpu/kernels.h:
include/takumi/core.h:
src/backend/backend.h:
