build-scalar/obj/src/train/report.o: src/train/report.c \
 src/train/report.h src/train/metrics.h include/takumi/train.h \
 include/takumi/core.h src/core/core.h
src/train/report.h:
src/train/metrics.h:
include/takumi/train.h:
include/takumi/core.h:
src/core/core.h:
