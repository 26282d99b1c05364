build-scalar/obj/src/tokenizer/chat_tokens.o: src/tokenizer/chat_tokens.c \
 src/core/core.h include/takumi/core.h src/tokenizer/chat_internal.h \
 include/takumi/chat.h include/takumi/tokenizer.h include/takumi/gguf.h
src/core/core.h:
include/takumi/core.h:
src/tokenizer/chat_internal.h:
include/takumi/chat.h:
include/takumi/tokenizer.h:
include/takumi/gguf.h:
