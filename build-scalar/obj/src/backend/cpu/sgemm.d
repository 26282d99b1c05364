build-scalar/obj/src/backend/cpu/sgemm.o: src/backend/cpu/sgemm.c \
 src/backend/backend.h include/takumi/core.h src/backend/cpu/kernels.h \
 src/core/core.h /usr/include/x86_64-linux-gnu/openblas-openmp/cblas.h \
 /usr/include/x86_64-linux-gnu/openblas-openmp/openblas_config.h
src/backend/backend.h:
include/takumi/core.h:
src/backend/cpu/kernels.h:
src/core/core.h:
/usr/include/x86_64-linux-gnu/openblas-openmp/cblas.h:
/usr/include/x86_64-linux-gnu/openblas-openmp/openblas_config.h:
