build-avx2/obj/src/model/arch_phi3.o: src/model/arch_phi3.c \
 src/model/arch.h include/takumi/model.h include/takumi/core.h \
 include/takumi/tokenizer.h include/takumi/gguf.h include/takumi/peft.h
src/model/arch.h:
include/takumi/model.h:
include/takumi/core.h:
include/takumi/tokenizer.h:
include/takumi/gguf.h:
include/takumi/peft.h:
