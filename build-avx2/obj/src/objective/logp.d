build-avx2/obj/src/objective/logp.o: src/objective/logp.c \
 src/objective/logp.h include/takumi/core.h src/objective/chunks.h \
 src/core/core.h src/backend/cpu/kernels.h src/backend/backend.h
src/objective/logp.h:
include/takumi/core.h:
src/objective/chunks.h:
src/core/core.h:
src/backend/cpu/kernels.h:
src/backend/backend.h:
