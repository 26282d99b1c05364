build-scalar/obj/src/peft/adapter.o: src/peft/adapter.c \
 src/peft/adapter_io.h src/peft/lora.h include/takumi/model.h \
 include/takumi/core.h include/takumi/tokenizer.h include/takumi/gguf.h \
 include/takumi/peft.h src/core/param.h src/model/export.h \
 include/takumi/export.h include/takumi/adapter.h \
 include/takumi/safetensors.h src/core/core.h
src/peft/adapter_io.h:
src/peft/lora.h:
include/takumi/model.h:
include/takumi/core.h:
include/takumi/tokenizer.h:
include/takumi/gguf.h:
include/takumi/peft.h:
src/core/param.h:
src/model/export.h:
include/takumi/export.h:
include/takumi/adapter.h:
include/takumi/safetensors.h:
src/core/core.h:
