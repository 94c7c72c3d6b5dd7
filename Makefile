# lidar3d: one Makefile, no other build system.
#   make            build every tool into bin/
#   make check      build and run all CMocka tests
#   make check-asan the same tests under AddressSanitizer + UBSan (CUDA left out)
#   make check-tsan the tests of the multi-threaded index path under ThreadSanitizer
#   make deps       install the Debian packages we need (root) or print the command
#   make bench      benchmarks against their peers (see docs/benchmarks.md)
#   make clean      remove build outputs
# V=1 shows full commands. NO_CUDA=1 skips the CUDA sources even when nvcc exists.

BUILD   ?= build
BIN     ?= bin
VERSION := 0.1.0

DEB_PACKAGES := build-essential pkg-config libyajl-dev libarchive-dev libcmocka-dev libfmt-dev \
                libhdf5-dev hdf5-tools libopenblas-dev libpng-dev libsimdjson-dev zip

ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @printf '  %-6s %s\n' $(1) $(2)
endif

PKGS    := yajl simdjson fmt libarchive hdf5 openblas libpng
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

CC      ?= cc
OPT     ?= -O2
CFLAGS  := -std=c11 -D_GNU_SOURCE $(OPT) -g -Wall -Wextra -Werror -I. $(PKG_CFLAGS) \
           -DLIDAR3D_VERSION='"$(VERSION)"' $(EXTRA_CFLAGS)
CXX     ?= g++
CXXFLAGS := -std=c++17 $(OPT) -g -Wall -Wextra -Werror -I. $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS  := $(PKG_LIBS) -lstdc++ -lpthread -lm $(EXTRA_LDFLAGS)

# ---- optional parts -------------------------------------------------------
CUDA_HOME ?= /usr/local/cuda
NVCC := $(if $(NO_CUDA),,$(shell command -v nvcc 2>/dev/null || ls $(CUDA_HOME)/bin/nvcc 2>/dev/null))
HAVE_CUDNN := $(if $(NVCC),$(shell ls $(CUDA_HOME)/include/cudnn.h /usr/include/cudnn.h 2>/dev/null | head -1))
HAVE_NCCL  := $(if $(NVCC),$(shell ls $(CUDA_HOME)/include/nccl.h /usr/include/nccl.h 2>/dev/null | head -1))
HAVE_OPENBLAS := $(shell pkg-config --exists openblas 2>/dev/null && echo yes)

ifneq ($(NVCC),)
NVCCFLAGS := -O2 -g -std=c++17 -I. -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90 -Xcompiler -Wall,-Werror
CFLAGS += -DLIDAR3D_HAVE_CUDA=1
LDLIBS += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lstdc++
endif

# simdjson's on-demand parser is compiled for one instruction set: on x86-64,
# AVX2 (formats/json_split.c checks the CPU before using it).
ifeq ($(shell uname -m),x86_64)
$(BUILD)/formats/json_fast.cc.o $(BUILD)/bench/parse_floor.cc.o: CXXFLAGS += -mavx2 -mbmi -mpclmul -mlzcnt -mpopcnt
endif

# ---- sources --------------------------------------------------------------
FORMATS_SRC := $(wildcard formats/*.c)
CXX_SRC     := $(wildcard formats/*.cc)
KERNELS_SRC := $(wildcard kernels/cpu/*.c) $(wildcard kernels/*.c)
TRAINER_SRC := $(wildcard trainer/*.c)
CUDA_SRC    := $(if $(NVCC),$(wildcard kernels/cuda/*.cu))
COMMON_SRC  := $(wildcard tools/common/*.c)
TOOL_MAINS  := $(wildcard tools/*.c)
TOOLS       := $(patsubst tools/%.c,$(BIN)/%,$(TOOL_MAINS))
BENCH_SRC   := $(wildcard bench/*.c)
BENCH_CXX   := $(wildcard bench/*.cc)
BENCHES     := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC)) \
               $(patsubst bench/%.cc,$(BUILD)/bench/%,$(BENCH_CXX))
TEST_SRC    := $(wildcard tests/test_*.c)
TESTS       := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))
LIB_OBJ := $(call obj,$(FORMATS_SRC) $(KERNELS_SRC) $(TRAINER_SRC) $(COMMON_SRC)) \
           $(patsubst %.cu,$(BUILD)/%.cu.o,$(CUDA_SRC)) $(patsubst %.cc,$(BUILD)/%.cc.o,$(CXX_SRC))
LIB := $(BUILD)/liblidar3d.a

.SECONDARY:
.PHONY: all check check-asan check-tsan deps bench demo learn-check clean found
all: found $(TOOLS)

found:
	@printf '  found: nvcc=%s cuDNN=%s NCCL=%s OpenBLAS=%s\n' \
	  "$(if $(NVCC),yes,no)" "$(if $(HAVE_CUDNN),yes,no)" "$(if $(HAVE_NCCL),yes,no)" \
	  "$(if $(HAVE_OPENBLAS),yes,no)"

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/%.cc.o: %.cc
	@mkdir -p $(dir $@)
	$(call say,CXX,$<)
	$(Q)$(CXX) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	$(call say,NVCC,$<)
	$(Q)$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJ)
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# A tool is tools/NAME.c plus any tools/NAME/*.c, over the library.
.SECONDEXPANSION:
$(BIN)/%: $(BUILD)/tools/%.o $$(call obj,$$(wildcard tools/%/*.c)) $(LIB)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $(filter %.o,$^) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/tests/support/testutil.o $(LIB)
	$(call say,LD,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LIB) $(CMOCKA_LIBS) $(LDLIBS)

# Benchmark drivers (bench/NAME.c) are built by `make check` too, so they never rot.
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	$(call say,LD,$@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LIB) $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/bench/%.cc.o $(LIB)
	$(call say,LD,$@)
	$(Q)$(CXX) $(CXXFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# Tests find the tools through LIDAR3D_BIN and the real data through LIDAR3D_SHARED.
check: all $(TESTS) $(BENCHES)
	@fail=0; for t in $(TESTS); do \
	  printf '== %s\n' $$t; \
	  LIDAR3D_BIN=$(abspath $(BIN)) LIDAR3D_SHARED=$(abspath ../shared) \
	  LIDAR3D_TMP=$(abspath $(BUILD))/tmp $$t || fail=1; \
	done; \
	if [ $$fail = 0 ]; then echo "all tests passed"; else echo "some tests FAILED"; exit 1; fi

check-asan:
	$(MAKE) check BUILD=build-asan BIN=build-asan/bin NO_CUDA=1 OPT=-O1 \
	  EXTRA_CFLAGS='-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all' \
	  EXTRA_LDFLAGS='-fsanitize=address,undefined'

# ThreadSanitizer over the tests of what runs on several threads: tables read
# in chunks, index lines built on a pool, LiDAR look-ups shared between them.
# A race makes the tool or the test exit non-zero, so the test fails.
TSAN_TESTS := line_pool json_records lyft_index real_data
check-tsan:
	$(MAKE) check BUILD=build-tsan BIN=build-tsan/bin NO_CUDA=1 OPT=-O1 \
	  TESTS='$(patsubst %,build-tsan/tests/test_%,$(TSAN_TESTS))' \
	  EXTRA_CFLAGS='-fsanitize=thread' EXTRA_LDFLAGS='-fsanitize=thread'

# The main job end to end on a small synthetic dataset, as real file targets:
# re-running skips finished steps (make clean or rm -r build/demo starts over).
DEMO := $(BUILD)/demo
DEMO_STEPS ?= 20
demo: $(DEMO)/run/ckpt/ckpt-$(shell printf %08d $(DEMO_STEPS)).l3d $(DEMO)/voxels-10.h5
	@echo
	@echo "demo: synthetic data   $(DEMO)/data (train split: $(DEMO)/train.txt)"
	@echo "      index            $(DEMO)/train.jsonl"
	@echo "      sweep cache      $(DEMO)/sweeps.h5    (sweep-pack --dump 0 $(DEMO)/sweeps.h5 | head)"
	@echo "      voxel cache      $(DEMO)/voxels-10.h5"
	@echo "      training run     $(DEMO)/run: metrics.jsonl, tb/, ckpt/, config.txt"

$(DEMO)/data/.done: | $(BIN)/lyft-synth
	@rm -rf $(DEMO)/data && mkdir -p $(DEMO)
	$(BIN)/lyft-synth --scenes 2 --samples-per-scene 30 --points 60000 --split-out $(DEMO) $(DEMO)/data
	@touch $@

$(DEMO)/train.jsonl: $(DEMO)/data/.done | $(BIN)/lyft-index
	$(BIN)/lyft-index --split train --split-file $(DEMO)/train.txt $(DEMO)/data -o $@

$(DEMO)/sweeps.h5: $(DEMO)/train.jsonl | $(BIN)/sweep-pack
	$(BIN)/sweep-pack $< -o $@

$(DEMO)/voxels-10.h5: $(DEMO)/sweeps.h5 | $(BIN)/voxel-cache
	$(BIN)/voxel-cache $< --sweeps 10 -o $@

$(DEMO)/run/ckpt/ckpt-%.l3d: $(DEMO)/sweeps.h5 | $(BIN)/ssn-train
	LIDAR3D_PROGRESS=1 $(BIN)/ssn-train --cache $(DEMO) --config small --steps $(DEMO_STEPS) \
	  --log-every 2 --out $(DEMO)/run --resume auto

# Learning check: the small config on synthetic data for a few minutes; the mean
# loss of the last 10 steps must be at most LEARN_FACTOR of the first 10's.
LEARN_STEPS ?= 100
LEARN_FACTOR ?= 0.6
learn-check: $(DEMO)/sweeps.h5 | $(BIN)/ssn-train
	rm -rf $(BUILD)/learn
	$(BIN)/ssn-train --cache $(DEMO) --config small --steps $(LEARN_STEPS) --log-every 1 \
	  --ckpt-every 100000 --out $(BUILD)/learn
	bench/learn-curve.sh $(BUILD)/learn/metrics.jsonl $(LEARN_FACTOR)

deps:
	@if [ "$$(id -u)" = 0 ]; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEB_PACKAGES) || \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEB_PACKAGES); }; \
	else echo "run as root: apt-get install -y $(DEB_PACKAGES)"; fi

bench: all $(BENCHES)
	BUILD=$(BUILD) bench/run.sh

clean:
	rm -rf build build-asan build-tsan bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
