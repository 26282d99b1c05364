build-scalar/obj/src/model/arch_qwen.o: src/model/arch_qwen.c \
 src/model/arch.h include/takumi/model.h include/takumi/core.h \
 include/takumi/tokenizer.h include/takumi/gguf.h include/takumi/peft.h
src/model/arch.h:
include/takumi/model.h:
include/takumi/core.h:
include/takumi/tokenizer.h:
include/takumi/gguf.h:
include/takumi/peft.h:
