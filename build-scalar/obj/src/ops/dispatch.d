build-scalar/obj/src/ops/dispatch.o: src/ops/dispatch.c src/ops/ops.h \
 include/takumi/core.h src/backend/backend.h
src/ops/ops.h:
include/takumi/core.h:
src/backend/backend.h:
