build-scalar/obj/src/infer/generate.o: src/infer/generate.c \
 src/model/llama.h include/takumi/model.h include/takumi/core.h \
 include/takumi/tokenizer.h include/takumi/gguf.h include/takumi/peft.h \
 include/takumi/safetensors.h src/ops/ops.h src/backend/backend.h \
 src/core/core.h
src/model/llama.h:
include/takumi/model.h:
include/takumi/core.h:
include/takumi/tokenizer.h:
include/takumi/gguf.h:
include/takumi/peft.h:
include/takumi/safetensors.h:
src/ops/ops.h:
src/backend/backend.h:
src/core/core.h:
