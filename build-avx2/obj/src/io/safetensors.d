build-avx2/obj/src/io/safetensors.o: src/io/safetensors.c \
 include/takumi/safetensors.h include/takumi/core.h src/core/core.h \
 /usr/include/cjson/cJSON.h
include/takumi/safetensors.h:
include/takumi/core.h:
src/core/core.h:
/usr/include/cjson/cJSON.h:
