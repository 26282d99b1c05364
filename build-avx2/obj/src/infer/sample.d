build-avx2/obj/src/infer/sample.o: src/infer/sample.c \
 include/takumi/model.h include/takumi/core.h include/takumi/tokenizer.h \
 include/takumi/gguf.h include/takumi/peft.h src/core/core.h
include/takumi/model.h:
include/takumi/core.h:
include/takumi/tokenizer.h:
include/takumi/gguf.h:
include/takumi/peft.h:
src/core/core.h:
