build-scalar/obj/src/backend/cpu/rope.o: src/backend/cpu/rope.c \
 src/backend/backend.h include/takumi/core.h src/backend/cpu/kernels.h
src/backend/backend.h:
include/takumi/core.h:
src/backend/cpu/kernels.h:
