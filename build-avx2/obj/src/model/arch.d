build-avx2/obj/src/model/arch.o: src/model/arch.c src/model/arch.h \
 include/takumi/model.h include/takumi/core.h include/takumi/tokenizer.h \
 include/takumi/gguf.h include/takumi/peft.h src/model/hfconfig.h
src/model/arch.h:
include/takumi/model.h:
include/takumi/core.h:
include/takumi/tokenizer.h:
include/takumi/gguf.h:
include/takumi/peft.h:
src/model/hfconfig.h:
