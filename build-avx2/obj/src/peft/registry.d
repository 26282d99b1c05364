build-avx2/obj/src/peft/registry.o: src/peft/registry.c \
 src/peft/registry.h include/takumi/model.h include/takumi/core.h \
 include/takumi/tokenizer.h include/takumi/gguf.h include/takumi/peft.h \
 src/core/param.h src/peft/lora.h src/core/core.h
src/peft/registry.h:
include/takumi/model.h:
include/takumi/core.h:
include/takumi/tokenizer.h:
include/takumi/gguf.h:
include/takumi/peft.h:
src/core/param.h:
src/peft/lora.h:
src/core/core.h:
