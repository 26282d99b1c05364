build-scalar/obj/src/objective/objective.o: src/objective/objective.c \
 src/objective/objective.h include/takumi/core.h src/objective/teacher.h \
 src/objective/chunks.h src/core/core.h
src/objective/objective.h:
include/takumi/core.h:
src/objective/teacher.h:
src/objective/chunks.h:
src/core/core.h:
