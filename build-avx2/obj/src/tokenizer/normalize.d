build-avx2/obj/src/tokenizer/normalize.o: src/tokenizer/normalize.c \
 src/tokenizer/unicode.h include/takumi/core.h
src/tokenizer/unicode.h:
include/takumi/core.h:
