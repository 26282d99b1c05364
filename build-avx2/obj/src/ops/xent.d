build-avx2/obj/src/ops/xent.o: src/ops/xent.c src/ops/ops.h \
 include/takumi/core.h src/backend/backend.h src/core/core.h \
 src/backend/cpu/kernels.h
src/ops/ops.h:
include/takumi/core.h:
src/backend/backend.h:
src/core/core.h:
src/backend/cpu/kernels.h:
