build-avx2/obj/src/model/export.o: src/model/export.c src/model/export.h \
 include/takumi/export.h include/takumi/model.h include/takumi/core.h \
 include/takumi/tokenizer.h include/takumi/gguf.h include/takumi/peft.h \
 src/model/llama.h include/takumi/safetensors.h src/ops/ops.h \
 src/backend/backend.h src/model/arch.h src/model/hfconfig.h \
 src/core/core.h /usr/include/cjson/cJSON.h
src/model/export.h:
include/takumi/export.h:
include/takumi/model.h:
include/takumi/core.h:
include/takumi/tokenizer.h:
include/takumi/gguf.h:
include/takumi/peft.h:
src/model/llama.h:
include/takumi/safetensors.h:
src/ops/ops.h:
src/backend/backend.h:
src/model/arch.h:
src/model/hfconfig.h:
src/core/core.h:
/usr/include/cjson/cJSON.h:
