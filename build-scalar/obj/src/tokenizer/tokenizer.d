build-scalar/obj/src/tokenizer/tokenizer.o: src/tokenizer/tokenizer.c \
 src/tokenizer/tok_internal.h include/takumi/tokenizer.h \
 include/takumi/core.h include/takumi/gguf.h src/core/core.h \
 src/tokenizer/unicode.h
src/tokenizer/tok_internal.h:
include/takumi/tokenizer.h:
include/takumi/core.h:
include/takumi/gguf.h:
src/core/core.h:
src/tokenizer/unicode.h:
