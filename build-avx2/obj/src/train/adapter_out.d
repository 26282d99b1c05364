build-avx2/obj/src/train/adapter_out.o: src/train/adapter_out.c \
 src/train/run.h src/train/trainer.h src/train/step.h \
 include/takumi/model.h include/takumi/core.h include/takumi/tokenizer.h \
 include/takumi/gguf.h include/takumi/peft.h src/train/optim.h \
 src/core/param.h src/peft/lora.h src/peft/registry.h \
 src/objective/objective.h src/objective/teacher.h src/train/metrics.h \
 include/takumi/train.h include/takumi/data.h include/takumi/chat.h \
 src/train/batch.h src/train/checkpoint.h src/core/core.h \
 src/peft/adapter_io.h src/model/export.h include/takumi/export.h \
 include/takumi/adapter.h include/takumi/safetensors.h
src/train/run.h:
src/train/trainer.h:
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
src/train/metrics.h:
include/takumi/train.h:
include/takumi/data.h:
include/takumi/chat.h:
src/train/batch.h:
src/train/checkpoint.h:
src/core/core.h:
src/peft/adapter_io.h:
src/model/export.h:
include/takumi/export.h:
include/takumi/adapter.h:
include/takumi/safetensors.h:
