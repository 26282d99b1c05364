build-scalar/obj/src/model/load_gguf.o: src/model/load_gguf.c \
 src/model/llama.h include/takumi/model.h include/takumi/core.h \
 include/takumi/tokenizer.h include/takumi/gguf.h include/takumi/peft.h \
 include/takumi/safetensors.h src/ops/ops.h src/backend/backend.h \
 src/model/arch.h src/core/core.h
src/model/llama.h:
include/takumi/model.h:
include/takumi/core.h:
include/takumi/tokenizer.h:
include/takumi/gguf.h:
include/takumi/peft.h:
include/takumi/safetensors.h:
src/ops/ops.h:
src/backend/backend.h:
src/model/arch.h:
src/core/core.h:
