build-avx2/obj/src/data/convert.o: src/data/convert.c \
 src/data/data_internal.h src/core/core.h include/takumi/core.h \
 include/takumi/data.h include/takumi/tokenizer.h include/takumi/gguf.h \
 include/takumi/chat.h
src/data/data_internal.h:
src/core/core.h:
include/takumi/core.h:
include/takumi/data.h:
include/takumi/tokenizer.h:
include/takumi/gguf.h:
include/takumi/chat.h:
