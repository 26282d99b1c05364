build-scalar/obj/src/tokenizer/unicode_data.o: \
 src/tokenizer/unicode_data.c src/tokenizer/unicode.h
src/tokenizer/unicode.h:
