build-scalar/obj/src/tokenizer/load_llama2c.o: \
 src/tokenizer/load_llama2c.c src/tokenizer/tok_internal.h \
 include/takumi/tokenizer.h include/takumi/core.h include/takumi/gguf.h \
 src/core/core.h
src/tokenizer/tok_internal.h:
include/takumi/tokenizer.h:
include/takumi/core.h:
include/takumi/gguf.h:
src/core/core.h:
