# takumi build. `make` builds libtakumi.a and the `takumi` command into build/;
# `make test` builds and runs the whole test suite (tests/run.sh).
# Switches (each 0 turns the feature off):
#   BLAS=0       no OpenBLAS: matmuls use the built-in scalar/SIMD kernels
#   OPENMP=0     no OpenMP threading
#   NATIVE=0     do not tune for this CPU (-march=native)
#   SANITIZE=1   ASan + UBSan build into build-asan/ (tests run there too)
#   FUZZ=1       also build libFuzzer targets (needs clang)
#   MPI=0        no MPI (data-parallel training under mpirun)
#   FAULT=1      fault-injection build into build-fault/ (TAKUMI_FAULT=io:N / alloc:N makes the Nth
#                write, fsync, rename or allocation fail; tests/fault.sh walks N over whole runs)
#   BACKENDS="cpu ref"  the backends to build (src/backend/<name>/, default both; cpu is required,
#                ref is the portable reference the others are tested against). A CUDA backend
#                would be BACKENDS="cpu cuda" (src/backend/cuda/ is not written yet).
CC      ?= cc
BLAS    ?= 1
OPENMP  ?= 1
NATIVE  ?= 1
SANITIZE ?= 0
FAULT   ?= 0
DEBUG   ?= 0

ifeq ($(SANITIZE),1)
BUILD   ?= build-asan
else ifeq ($(FAULT),1)
BUILD   ?= build-fault
else
BUILD   ?= build
endif

CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Iinclude -fPIC
# The library and the tests see src/ (private headers); the CLI sees only include/ (the public API).
SRC_INC = -Isrc
LDLIBS  = -lm -lpthread

ifeq ($(DEBUG),1)
OPT = -O0 -g
else
OPT = -O2 -g
endif
ifeq ($(NATIVE),1)
OPT += -march=native
endif
ifeq ($(SANITIZE),1)
OPT += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

# --- required libraries -----------------------------------------------------
PCRE2_CFLAGS := $(shell pkg-config --cflags libpcre2-8 2>/dev/null)
PCRE2_LIBS   := $(shell pkg-config --libs libpcre2-8 2>/dev/null)
CJSON_CFLAGS := $(shell pkg-config --cflags libcjson 2>/dev/null)
CJSON_LIBS   := $(shell pkg-config --libs libcjson 2>/dev/null)
ifeq ($(PCRE2_LIBS),)
$(error PCRE2 not found: apt-get install libpcre2-dev (or run scripts/setup.sh))
endif
ifeq ($(CJSON_LIBS),)
$(error cJSON not found: apt-get install libcjson-dev (or run scripts/setup.sh))
endif
# `takumi serve`: libmicrohttpd (HTTP server: thread per connection, limits, streamed bodies) and
# SQLite (its keys, later its jobs and models; WAL).
MHD_CFLAGS    := $(shell pkg-config --cflags libmicrohttpd 2>/dev/null)
MHD_LIBS      := $(shell pkg-config --libs libmicrohttpd 2>/dev/null)
SQLITE_CFLAGS := $(shell pkg-config --cflags sqlite3 2>/dev/null)
SQLITE_LIBS   := $(shell pkg-config --libs sqlite3 2>/dev/null)
ifeq ($(MHD_LIBS),)
$(error libmicrohttpd not found (takumi serve): apt-get install libmicrohttpd-dev (or run scripts/deps.sh))
endif
ifeq ($(SQLITE_LIBS),)
$(error SQLite not found (takumi serve): apt-get install libsqlite3-dev (or run scripts/deps.sh))
endif
# `takumi deploy`: libcurl (the CLI's HTTP client for a running takumi serve; the library does not use it).
CURL_CFLAGS   := $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIBS     := $(shell pkg-config --libs libcurl 2>/dev/null)
ifeq ($(CURL_LIBS),)
$(error libcurl not found (takumi deploy): apt-get install libcurl4-openssl-dev (or run scripts/deps.sh))
endif
CFLAGS_BASE += $(PCRE2_CFLAGS) $(CJSON_CFLAGS) $(MHD_CFLAGS) $(SQLITE_CFLAGS) $(CURL_CFLAGS)
LDLIBS += $(PCRE2_LIBS) $(CJSON_LIBS) $(MHD_LIBS) $(SQLITE_LIBS) $(CURL_LIBS)

# --- optional features ------------------------------------------------------
FEATURES = "  Serve    : libmicrohttpd $(shell pkg-config --modversion libmicrohttpd), SQLite $(shell pkg-config --modversion sqlite3) (takumi serve)"
ifeq ($(BLAS),1)
BLAS_CFLAGS := $(shell pkg-config --cflags openblas 2>/dev/null)
BLAS_LIBS   := $(shell pkg-config --libs openblas 2>/dev/null)
ifneq ($(BLAS_LIBS),)
CFLAGS_BASE += -DTK_HAVE_BLAS $(BLAS_CFLAGS)
LDLIBS += $(BLAS_LIBS)
FEATURES += "  BLAS     : OpenBLAS ($(BLAS_LIBS))   [BLAS=0 to switch off]"
else
FEATURES += "  BLAS     : not found (apt-get install libopenblas-openmp-dev); built-in kernels"
endif
else
FEATURES += "  BLAS     : off (BLAS=0)"
endif
ifeq ($(OPENMP),1)
CFLAGS_BASE += -fopenmp -DTK_HAVE_OPENMP
LDFLAGS += -fopenmp
FEATURES += "  OpenMP   : on   [OPENMP=0 to switch off]"
else
CFLAGS_BASE += -Wno-unknown-pragmas
FEATURES += "  OpenMP   : off (OPENMP=0)"
endif
# Backends (src/backend/backend.h): only the listed src/backend/<name>/ are compiled, each with
# -DTK_BACKEND_<NAME>=1, which puts it in the list in src/backend/backend.c.
BACKENDS ?= cpu ref
ifeq ($(filter cpu,$(BACKENDS)),)
$(error BACKENDS="$(BACKENDS)" lacks cpu: the CPU backend is always built (e.g. BACKENDS="cpu ref"))
endif
$(foreach b,$(BACKENDS),$(if $(wildcard src/backend/$(b)/*.c),,$(error BACKENDS names "$(b)", but src/backend/$(b)/ has no sources)))
CFLAGS_BASE += $(foreach b,$(BACKENDS),-DTK_BACKEND_$(shell echo $(b) | tr a-z A-Z)=1)
FEATURES += "  Backends : $(BACKENDS)   [BACKENDS='cpu ...' to choose; cpu is required]"
ifneq ($(shell command -v nvcc 2>/dev/null),)
FEATURES += "  CUDA     : nvcc found, but there is no CUDA backend yet (src/backend/cuda/ not written)"
else
FEATURES += "  CUDA     : nvcc not found (no CUDA backend yet either)"
endif
# MPI (data-parallel training under mpirun): OpenMPI from Debian (libopenmpi-dev), found through mpicc.
MPI ?= 1
ifeq ($(MPI),1)
MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null)
MPI_LIBS   := $(shell mpicc --showme:link 2>/dev/null)
ifneq ($(MPI_LIBS),)
CFLAGS_BASE += -DTK_HAVE_MPI $(MPI_CFLAGS)
LDLIBS += $(MPI_LIBS)
FEATURES += "  MPI      : OpenMPI ($(MPI_LIBS))   [MPI=0 to switch off]"
else
FEATURES += "  MPI      : not found (apt-get install libopenmpi-dev openmpi-bin); one process only"
endif
else
FEATURES += "  MPI      : off (MPI=0)"
endif
ifeq ($(SANITIZE),1)
FEATURES += "  Sanitize : ASan+UBSan -> $(BUILD)/   [SANITIZE=0 for the normal build]"
else
FEATURES += "  Sanitize : off   [SANITIZE=1 for an ASan+UBSan build in build-asan/]"
endif
ifeq ($(FAULT),1)
CFLAGS_BASE += -DTK_FAULT_INJECT
FEATURES += "  Faults   : injected on demand (TAKUMI_FAULT) -> $(BUILD)/"
endif

CFLAGS := $(CFLAGS_BASE) $(OPT) $(CFLAGS)

LIB_SRC  := $(sort $(wildcard src/*/*.c) $(filter-out src/backend/%,$(wildcard src/*/*/*.c)) \
                  $(foreach b,$(BACKENDS),$(wildcard src/backend/$(b)/*.c)))
CLI_SRC  := $(sort $(wildcard tools/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
DEPS     := $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

.PHONY: all features test tests fuzz clean
all: features $(BUILD)/libtakumi.a $(BUILD)/takumi

features:
	@echo "takumi build ($(BUILD)/):"
	@for f in $(FEATURES); do echo "$$f"; done

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SRC_INC) -MMD -MP -c $< -o $@

# the dashboard page is assembled into this object (.incbin)
$(BUILD)/obj/src/serve/dashboard.o: src/serve/dashboard.html

$(CLI_OBJ): SRC_INC =

# backend.c's list follows BACKENDS: recompile it when the list changes (a file records the last one).
BACKENDS_FILE := $(BUILD)/backends.txt
$(shell mkdir -p $(BUILD); [ "$$(cat $(BACKENDS_FILE) 2>/dev/null)" = "$(BACKENDS)" ] || echo "$(BACKENDS)" > $(BACKENDS_FILE))
$(BUILD)/obj/src/backend/backend.o build-fuzz/obj/src/backend/backend.o: $(BACKENDS_FILE)

$(BUILD)/libtakumi.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/takumi: $(CLI_OBJ) $(BUILD)/libtakumi.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libtakumi.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/test.h $(BUILD)/libtakumi.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SRC_INC) -Itests -o $@ $< $(BUILD)/libtakumi.a $(LDFLAGS) $(LDLIBS)

tests: all $(TEST_BIN)

test: tests
	@BUILD=$(BUILD) bash tests/run.sh

# libFuzzer targets: tests/fuzz/fuzz_*.c, built with clang into $(BUILD)/fuzz/.
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_CFLAGS = $(filter-out -fopenmp -DTK_HAVE_OPENMP,$(CFLAGS_BASE)) $(SRC_INC) -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJ := $(LIB_SRC:%.c=build-fuzz/obj/%.o)
fuzz: $(FUZZ_BIN)
build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@
build-fuzz/libtakumi.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^
build-fuzz/%: tests/fuzz/%.c build-fuzz/libtakumi.a
	clang $(FUZZ_CFLAGS) -o $@ $< build-fuzz/libtakumi.a $(LDLIBS)

-include $(FUZZ_OBJ:.o=.d)

clean:
	rm -rf build build-asan build-fuzz

-include $(DEPS)
