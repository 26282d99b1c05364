build-scalar/obj/src/model/hfconfig.o: src/model/hfconfig.c \
 src/model/hfconfig.h include/takumi/model.h include/takumi/core.h \
 include/takumi/tokenizer.h include/takumi/gguf.h include/takumi/peft.h \
 src/core/core.h src/model/arch.h /usr/include/cjson/cJSON.h
src/model/hfconfig.h:
include/takumi/model.h:
include/takumi/core.h:
include/takumi/tokenizer.h:
include/takumi/gguf.h:
include/takumi/peft.h:
src/core/core.h:
src/model/arch.h:
/usr/include/cjson/cJSON.h:
