build-avx2/obj/tools/cli/cmd_data.o: tools/cli/cmd_data.c tools/cli/cli.h \
 include/takumi.h include/takumi/core.h include/takumi/gguf.h \
 include/takumi/core.h include/takumi/safetensors.h \
 include/takumi/tokenizer.h include/takumi/gguf.h include/takumi/chat.h \
 include/takumi/tokenizer.h include/takumi/model.h include/takumi/peft.h \
 include/takumi/data.h include/takumi/chat.h include/takumi/train.h \
 include/takumi/adapter.h include/takumi/model.h include/takumi/export.h \
 include/takumi/export.h
tools/cli/cli.h:
include/takumi.h:
include/takumi/core.h:
include/takumi/gguf.h:
include/takumi/core.h:
include/takumi/safetensors.h:
include/takumi/tokenizer.h:
include/takumi/gguf.h:
include/takumi/chat.h:
include/takumi/tokenizer.h:
include/takumi/model.h:
include/takumi/peft.h:
include/takumi/data.h:
include/takumi/chat.h:
include/takumi/train.h:
include/takumi/adapter.h:
include/takumi/model.h:
include/takumi/export.h:
include/takumi/export.h:
