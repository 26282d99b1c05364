build-avx2/obj/src/tokenizer/encode.o: src/tokenizer/encode.c \
 src/tokenizer/tok_internal.h include/takumi/tokenizer.h \
 include/takumi/core.h include/takumi/gguf.h src/core/core.h \
 src/tokenizer/unicode.h
src/tokenizer/tok_internal.h:
include/takumi/tokenizer.h:
include/takumi/core.h:
include/takumi/gguf.h:
src/core/core.h:
src/tokenizer/unicode.h:
