build-avx2/obj/src/train/optim.o: src/train/optim.c src/train/optim.h \
 src/core/param.h include/takumi/core.h src/core/core.h
src/train/optim.h:
src/core/param.h:
include/takumi/core.h:
src/core/core.h:
