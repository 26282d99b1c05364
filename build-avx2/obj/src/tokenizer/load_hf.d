build-avx2/obj/src/tokenizer/load_hf.o: src/tokenizer/load_hf.c \
 src/tokenizer/tok_internal.h include/takumi/tokenizer.h \
 include/takumi/core.h include/takumi/gguf.h src/core/core.h \
 /usr/include/cjson/cJSON.h
src/tokenizer/tok_internal.h:
include/takumi/tokenizer.h:
include/takumi/core.h:
include/takumi/gguf.h:
src/core/core.h:
/usr/include/cjson/cJSON.h:
