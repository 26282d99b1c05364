build-scalar/obj/src/ops/linear.o: src/ops/linear.c src/ops/ops.h \
 include/takumi/core.h src/backend/backend.h src/core/core.h
src/ops/ops.h:
include/takumi/core.h:
src/backend/backend.h:
src/core/core.h:
