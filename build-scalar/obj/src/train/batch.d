build-scalar/obj/src/train/batch.o: src/train/batch.c src/train/batch.h \
 include/takumi/data.h include/takumi/core.h include/takumi/tokenizer.h \
 include/takumi/gguf.h include/takumi/chat.h include/takumi/model.h \
 include/takumi/peft.h src/data/data_internal.h src/core/core.h
src/train/batch.h:
include/takumi/data.h:
include/takumi/core.h:
include/takumi/tokenizer.h:
include/takumi/gguf.h:
include/takumi/chat.h:
include/takumi/model.h:
include/takumi/peft.h:
src/data/data_internal.h:
src/core/core.h:
