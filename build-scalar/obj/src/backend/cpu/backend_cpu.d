build-scalar/obj/src/backend/cpu/backend_cpu.o: \
 src/backend/cpu/backend_cpu.c src/backend/backend.h \
 include/takumi/core.h src/backend/cpu/kernels.h src/core/core.h
src/backend/backend.h:
include/takumi/core.h:
src/backend/cpu/kernels.h:
src/core/core.h:
