build-avx2/obj/src/train/checkpoint.o: src/train/checkpoint.c \
 src/train/checkpoint.h src/train/optim.h src/core/param.h \
 include/takumi/core.h include/takumi/safetensors.h src/core/core.h
src/train/checkpoint.h:
src/train/optim.h:
src/core/param.h:
include/takumi/core.h:
include/takumi/safetensors.h:
src/core/core.h:
