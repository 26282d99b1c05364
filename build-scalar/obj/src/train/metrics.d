build-scalar/obj/src/train/metrics.o: src/train/metrics.c \
 src/train/metrics.h include/takumi/train.h include/takumi/core.h \
 src/core/core.h
src/train/metrics.h:
include/takumi/train.h:
include/takumi/core.h:
src/core/core.h:
