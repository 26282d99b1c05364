build-avx2/obj/src/objective/teacher.o: src/objective/teacher.c \
 src/objective/teacher.h include/takumi/core.h src/objective/chunks.h \
 src/core/core.h src/ops/ops.h src/backend/backend.h \
 src/backend/cpu/kernels.h
src/objective/teacher.h:
include/takumi/core.h:
src/objective/chunks.h:
src/core/core.h:
src/ops/ops.h:
src/backend/backend.h:
src/backend/cpu/kernels.h:
