build-scalar/obj/src/backend/backend.o: src/backend/backend.c \
 src/backend/backend.h include/takumi/core.h src/core/core.h
src/backend/backend.h:
include/takumi/core.h:
src/core/core.h:
