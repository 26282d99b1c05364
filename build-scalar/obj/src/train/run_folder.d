build-scalar/obj/src/train/run_folder.o: src/train/run_folder.c \
 src/train/run.h src/train/trainer.h src/train/step.h \
 include/takumi/model.h include/takumi/core.h include/takumi/tokenizer.h \
 include/takumi/gguf.h include/takumi/peft.h src/train/optim.h \
 src/core/param.h src/peft/lora.h src/peft/registry.h \
 src/objective/objective.h src/objective/teacher.h src/train/metrics.h \
 include/takumi/train.h include/takumi/data.h include/takumi/chat.h \
 src/train/batch.h src/train/checkpoint.h src/core/core.h
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
