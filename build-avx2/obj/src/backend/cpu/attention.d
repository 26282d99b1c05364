build-avx2/obj/src/backend/cpu/attention.o: src/backend/cpu/attention.c \
 src/backend/backend.h include/takumi/core.h src/core/core.h \
 src/backend/cpu/kernels.h
src/backend/backend.h:
include/takumi/core.h:
src/core/core.h:
src/backend/cpu/kernels.h:
