build-scalar/obj/src/train/step.o: src/train/step.c src/train/step.h \
 include/takumi/model.h include/takumi/core.h include/takumi/tokenizer.h \
 include/takumi/gguf.h include/takumi/peft.h src/train/optim.h \
 src/core/param.h src/peft/lora.h src/peft/registry.h \
 src/objective/objective.h src/objective/teacher.h src/model/backward.h \
 src/model/llama.h include/takumi/safetensors.h src/ops/ops.h \
 src/backend/backend.h src/model/arch.h src/model/hfconfig.h \
 src/backend/cpu/kernels.h src/core/core.h
src/train/step.h:
include/takumi/model.h:
include/takumi/core.h:
include/takumi/tokenizer.h:
include/takumi/gguf.h:
include/takumi/peft.h:
src/train/optim.h:
src/core/param.h:
src/peft/lora.h:
src/peft/registry.h:
src/objective/objective.h:
src/objective/teacher.h:
src/model/backward.h:
src/model/llama.h:
include/takumi/safetensors.h:
src/ops/ops.h:
src/backend/backend.h:
src/model/arch.h:
src/model/hfconfig.h:
src/backend/cpu/kernels.h:
src/core/core.h:
