build-scalar/obj/src/objective/chunks.o: src/objective/chunks.c \
 src/objective/chunks.h include/takumi/core.h src/core/core.h \
 src/ops/ops.h src/backend/backend.h
src/objective/chunks.h:
include/takumi/core.h:
src/core/core.h:
src/ops/ops.h:
src/backend/backend.h:
