build-scalar/obj/src/data/reader.o: src/data/reader.c \
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
