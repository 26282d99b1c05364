build-scalar/obj/src/core/scratch.o: src/core/scratch.c \
 include/takumi/peft.h include/takumi/core.h src/core/core.h
include/takumi/peft.h:
include/takumi/core.h:
src/core/core.h:
