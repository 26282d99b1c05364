build-avx2/obj/src/objective/sft.o: src/objective/sft.c \
 src/objective/objective.h include/takumi/core.h src/objective/teacher.h \
 src/ops/ops.h src/backend/backend.h
src/objective/objective.h:
include/takumi/core.h:
src/objective/teacher.h:
src/ops/ops.h:
src/backend/backend.h:
