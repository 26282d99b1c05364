build-avx2/obj/src/tokenizer/load_gguf.o: src/tokenizer/load_gguf.c \
 src/tokenizer/tok_internal.h include/takumi/tokenizer.h \
 include/takumi/core.h include/takumi/gguf.h src/core/core.h
src/tokenizer/tok_internal.h:
include/takumi/tokenizer.h:
include/takumi/core.h:
include/takumi/gguf.h:
src/core/core.h:
