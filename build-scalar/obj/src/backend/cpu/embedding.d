build-scalar/obj/src/backend/cpu/embedding.o: src/backend/cpu/embedding.c \
 src/backend/backend.h include/takumi/core.h src/backend/cpu/kernels.h \
 src/core/core.h
src/backend/backend.h:
include/takumi/core.h:
src/backend/cpu/kernels.h:
src/core/core.h:
