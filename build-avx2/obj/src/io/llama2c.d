build-avx2/obj/src/io/llama2c.o: src/io/llama2c.c src/io/llama2c.h \
 include/takumi/model.h include/takumi/core.h include/takumi/tokenizer.h \
 include/takumi/gguf.h include/takumi/peft.h src/core/core.h
src/io/llama2c.h:
include/takumi/model.h:
include/takumi/core.h:
include/takumi/tokenizer.h:
include/takumi/gguf.h:
include/takumi/peft.h:
src/core/core.h:
