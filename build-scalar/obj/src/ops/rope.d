build-scalar/obj/src/ops/rope.o: src/ops/rope.c src/ops/ops.h \
 include/takumi/core.h src/backend/backend.h include/takumi/model.h \
 include/takumi/tokenizer.h include/takumi/gguf.h include/takumi/peft.h \
 src/core/core.h
src/ops/ops.h:
include/takumi/core.h:
src/backend/backend.h:
include/takumi/model.h:
include/takumi/tokenizer.h:
include/takumi/gguf.h:
include/takumi/peft.h:
src/core/core.h:
