# cairn — one plain, non-recursive GNU Makefile.
#
#   make              release build of cairnd and cairn   (build/$(BOARD)/release/)
#   make run          build, create ./var/node if missing, run cairnd in the foreground
#   make test         install deps, ASan+UBSan build, run every test (and TEST_BOARD's unit tests under qemu)
#   make bench        release build of the benchmarks, run them (JSON lines)
#   make fuzz         build the libFuzzer targets (clang) in build/$(BOARD)/fuzz/
#   make deps         install the Debian 12 packages the build and tests need
#   make check-layers fail if an include points up or sideways in the layer order
#   make image        the board's signed image: a whole disk image where the board has one (qemu-arm64, rpi4),
#                     else a squashfs overlay (IMAGE_KEY=key.pem; docs/boards.md)
#   make image-test   check a disk image (BOARD=rpi4); qemu-arm64: also boot it, update, roll back, hung boot
#   make soak         the long tests: many kill -9s of the store, the image test
#   make help         this list
#
# Variables: BOARD=host (see boards/), MODE=release|debug|asan|qemu, V=1 for full commands, TEST_BOARD=<board>,
# JOBS=N compiles at once (default: every core).

BOARD ?= host
MODE  ?= release

# Builds run JOBS compiles at once (every core by default; JOBS=1 for a
# serial build). Set once at the top level: the sub-makes of test, run and
# bench share its job server (a -j given again below would reset it).
JOBS ?= $(shell nproc)
ifeq ($(MAKELEVEL),0)
MAKEFLAGS += -j$(JOBS)
endif
include boards/$(BOARD).mk

CXX      ?= g++
CROSS    := $(BOARD_TRIPLET:%=%-)
ifneq ($(CROSS),)
CXX      := $(CROSS)g++
endif

BUILD    := build/$(BOARD)/$(MODE)
GEN      := $(BUILD)/gen

CPPFLAGS := -Iinclude -Isrc -I$(GEN) -DCAIRN_BOARD=\"$(BOARD)\"
CXXFLAGS := -std=c++20 -Wall -Wextra -Werror -Wshadow -Wnon-virtual-dtor -pipe $(BOARD_CFLAGS)
LIB_CXXFLAGS := -fno-exceptions
LDLIBS   := -luv -llmdb -lmbedtls -lmbedx509 -lmbedcrypto -lcjson -lpthread $(BOARD_LDLIBS)

ifeq ($(MODE),release)
CXXFLAGS += -O2 -DNDEBUG
else ifeq ($(MODE),debug)
CXXFLAGS += -O0 -g
else ifeq ($(MODE),qemu)
# The build a board's tests run under qemu-user: ASan there is not practical,
# and -O0 code runs the suite several times slower under emulation. -Og,
# not -O1: GCC 12 at -O1 warns a false maybe-uninitialized through std::variant.
CXXFLAGS += -Og -g
else ifeq ($(MODE),fuzz)
CXX      := clang++
CXXFLAGS += -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=address,undefined
else ifeq ($(MODE),asan)
CXXFLAGS += -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDFLAGS  += -fsanitize=address,undefined
else
$(error MODE must be release, debug, asan, qemu or fuzz)
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

# --- sources ----------------------------------------------------------------
# Every src/<layer>/*.cc and platform/linux/*.cc is library code except the two
# composition roots' main.cc files. New layers need no Makefile change.
LIB_SRCS  := $(filter-out src/daemon/main.cc src/cli/main.cc,$(wildcard src/*/*.cc)) \
             $(wildcard platform/linux/*.cc)

# --- fec: optional ISA-L kernel ---------------------------------------------
# src/fec/kernel_isal.cc uses Intel's ISA-L (Debian's libisal-dev, amd64 and
# arm64) when the target's toolchain can compile and link against it; without
# it the fec layer keeps its own kernels. CAIRN_ISAL=0 or 1 overrides the probe.
ifndef CAIRN_ISAL
CAIRN_ISAL := $(shell printf '\043include <isa-l/erasure_code.h>\nint main(){ec_init_tables(0,0,0,0);}\n' | \
                $(CXX) -x c++ - -lisal -o /dev/null 2>/dev/null && echo 1 || echo 0)
endif
ifeq ($(CAIRN_ISAL),1)
CPPFLAGS += -DCAIRN_HAVE_ISAL
LDLIBS   += -lisal
endif

TEST_SRCS := $(wildcard test/unit/*/*.cc) $(wildcard test/support/*.cc)
BENCH_SRCS := $(wildcard test/bench/*_bench.cc)
TOOL_SRCS  := $(wildcard test/tools/*.cc)
FUZZ_SRCS  := $(wildcard test/fuzz/*_fuzzer.cc)

obj = $(patsubst %.cc,$(BUILD)/obj/%.o,$(1))

# A 32-bit ARM board whose baseline lacks NEON but whose CPU has it
# (BOARD_NEON_CFLAGS, helios4) compiles only the two NEON kernels with it; they
# are chosen at run time when AT_HWCAP has NEON. `private`: the flags file
# these objects depend on keeps the board's flags.
ifneq ($(BOARD_NEON_CFLAGS),)
CPPFLAGS += -DCAIRN_ARM_NEON_KERNELS
$(call obj,src/crypto/aead_chacha_neon.cc src/fec/kernel_neon.cc): private CXXFLAGS += $(BOARD_NEON_CFLAGS)
endif
LIB_OBJS  := $(call obj,$(LIB_SRCS))
TEST_OBJS := $(call obj,$(TEST_SRCS))
LIB       := $(BUILD)/libcairn.a
BINS      := $(BUILD)/cairnd $(BUILD)/cairn
UNIT      := $(BUILD)/unit_tests
BENCHES   := $(patsubst test/bench/%.cc,$(BUILD)/bench/%,$(BENCH_SRCS))
TOOLS     := $(patsubst test/tools/%.cc,$(BUILD)/tools/%,$(TOOL_SRCS))
# The power-cut file system (test/tools/powercut_fs.cc) links libfuse3 and
# runs on the host only.
ifneq ($(CROSS),)
TOOLS     := $(filter-out $(BUILD)/tools/powercut_fs,$(TOOLS))
endif
$(BUILD)/tools/powercut_fs: LDLIBS += -lfuse3
FUZZERS   := $(patsubst test/fuzz/%.cc,$(BUILD)/fuzz/%,$(FUZZ_SRCS))

.DEFAULT_GOAL := all
.PHONY: all run test bench deps check-layers help clean FORCE
.SECONDARY:

all: $(BINS)

# --- flags are recorded; a change of flags rebuilds everything --------------
FLAGS_FILE := $(BUILD)/flags
$(FLAGS_FILE): FORCE
	@mkdir -p $(@D)
	@echo '$(CXX) $(CPPFLAGS) $(CXXFLAGS) $(LDFLAGS) $(LDLIBS)' | cmp -s - $@ || \
	  echo '$(CXX) $(CPPFLAGS) $(CXXFLAGS) $(LDFLAGS) $(LDLIBS)' > $@

# --- board defaults: every boards/*.mk becomes one generated table ----------
$(GEN)/board_defaults.inc: $(wildcard boards/*.mk) boards/gen_defaults.sh
	@mkdir -p $(@D)
	$(Q)sh boards/gen_defaults.sh $(sort $(wildcard boards/*.mk)) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/src/core/limits.o: $(GEN)/board_defaults.inc

# --- compile ----------------------------------------------------------------
$(BUILD)/obj/src/%.o: src/%.cc $(FLAGS_FILE)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  CXX     $<')
	$(Q)$(CXX) $(CPPFLAGS) $(CXXFLAGS) $(LIB_CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/platform/%.o: platform/%.cc $(FLAGS_FILE)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  CXX     $<')
	$(Q)$(CXX) $(CPPFLAGS) $(CXXFLAGS) $(LIB_CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/test/%.o: test/%.cc $(FLAGS_FILE)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  CXX     $<')
	$(Q)$(CXX) $(CPPFLAGS) -Itest $(CXXFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@$(if $(Q),echo '  AR      $@')
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/cairnd: $(call obj,src/daemon/main.cc) $(LIB)
	@$(if $(Q),echo '  LINK    $@')
	$(Q)$(CXX) $(CXXFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/cairn: $(call obj,src/cli/main.cc) $(LIB)
	@$(if $(Q),echo '  LINK    $@')
	$(Q)$(CXX) $(CXXFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(UNIT): $(TEST_OBJS) $(LIB)
	@$(if $(Q),echo '  LINK    $@')
	$(Q)$(CXX) $(CXXFLAGS) $(LDFLAGS) $(TEST_OBJS) $(LIB) -lgtest_main -lgtest $(LDLIBS) -o $@

$(BUILD)/tools/%: $(BUILD)/obj/test/tools/%.o $(LIB)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  LINK    $@')
	$(Q)$(CXX) $(CXXFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/fuzz/%: $(BUILD)/obj/test/fuzz/%.o $(LIB)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  LINK    $@')
	$(Q)$(CXX) $(CXXFLAGS) -fsanitize=fuzzer $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/bench/%: $(BUILD)/obj/test/bench/%.o $(LIB)
	@mkdir -p $(@D)
	@$(if $(Q),echo '  LINK    $@')
	$(Q)$(CXX) $(CXXFLAGS) $(LDFLAGS) $^ $(LDLIBS) -o $@

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

include boards/image.mk

# --- user-facing targets ----------------------------------------------------
DEBIAN_PYTHON := /usr/bin/python3

deps:
	$(Q)sh boards/install_deps.sh $(BOARD_APT)

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)test -e var/node/cairn.json || $(BUILD)/cairn init var/node
	exec $(BUILD)/cairnd var/node

# A board with an emulator (BOARD_RUN: qemu-user) tests a MODE=qemu build
# there, the C++ unit suite only: ASan under qemu-user is not practical, and the
# Python integration and interop suites drive host processes (host only).
# The host's `make test` also builds one board (TEST_BOARD, kirkwood: 32-bit
# armel, ARMv5, the smallest memory class, so it catches the most) and runs its
# unit suite under qemu alongside the host suites, counted in the same closing
# line. TEST_BOARD= (empty) leaves it out.
TEST_BOARD ?= kirkwood
board_var = $(shell sed -n 's/^$(2)[ \t]*=[ \t]*//p' boards/$(1).mk)
BOARD_EXCLUDE := boards/qemu_exclude.txt

ifneq ($(BOARD_RUN),)
test: deps
	$(Q)$(MAKE) --no-print-directory MODE=qemu build-tests
	$(Q)$(DEBIAN_PYTHON) test/run_tests.py --build build/$(BOARD)/qemu --runner '$(BOARD_RUN)' \
	  --timeout-mult $(BOARD_TIMEOUT_MULT) --exclude $(BOARD_EXCLUDE) $(or $(TESTS),unit)
else
test: deps
	$(Q)sh test/check_layers.sh
	$(Q)$(MAKE) --no-print-directory MODE=asan build-tests
	$(Q)$(MAKE) --no-print-directory MODE=release build/$(BOARD)/release/cairnd
	$(Q)$(MAKE) --no-print-directory MODE=fuzz build-fuzzers
ifneq ($(TEST_BOARD),)
	$(Q)$(MAKE) --no-print-directory BOARD=$(TEST_BOARD) deps
	$(Q)$(MAKE) --no-print-directory BOARD=$(TEST_BOARD) MODE=qemu build/$(TEST_BOARD)/qemu/unit_tests
endif
	$(Q)$(MAKE) --no-print-directory aead-arm-check
	$(Q)$(DEBIAN_PYTHON) test/run_tests.py --build build/$(BOARD)/asan --fuzz-build build/$(BOARD)/fuzz \
	  $(if $(TEST_BOARD),--board-build build/$(TEST_BOARD)/qemu --board-runner '$(call board_var,$(TEST_BOARD),BOARD_RUN)' \
	    --board-timeout-mult $(call board_var,$(TEST_BOARD),BOARD_TIMEOUT_MULT) --board-exclude $(BOARD_EXCLUDE)) $(TESTS)
endif

# The NEON kernels in `make test`: the AEAD and FEC kernel tests alone (and
# only the sources they need), built for arm64 (rpi4) and with helios4's
# shipped flags (its baseline has no NEON; its two NEON files alone are built
# with it and chosen by AT_HWCAP), run under qemu-user. On a Cortex-A72 and a
# Cortex-A9 the "neon" kernels are required (test/unit/crypto/aead_arm_test.cc,
# test/unit/fec/fec_arm_test.cc); on a Cortex-A9 without NEON (qemu traps
# every NEON instruction there) the portable ones, and nothing may use NEON.
AEAD_CHECK_SRCS := $(wildcard src/crypto/aead*.cc) src/crypto/base64.cc src/core/status.cc src/core/json.cc \
                   $(wildcard src/fec/*.cc) test/support/vectors.cc $(wildcard test/unit/crypto/aead*_test.cc) \
                   test/unit/fec/fec_arm_test.cc
$(BUILD)/aead_check: $(call obj,$(AEAD_CHECK_SRCS))
	@$(if $(Q),echo '  LINK    $@')
	$(Q)$(CXX) $(CXXFLAGS) $(LDFLAGS) $^ -lgtest_main -lgtest -lmbedcrypto -lcjson -lpthread \
	  $(filter -lisal,$(LDLIBS)) $(BOARD_LDLIBS) -o $@
.PHONY: aead-arm-check
aead-arm-check:
	$(Q)$(MAKE) --no-print-directory BOARD=rpi4 deps && $(MAKE) --no-print-directory BOARD=helios4 deps
	$(Q)$(MAKE) --no-print-directory BOARD=rpi4 MODE=qemu BUILD=build/rpi4/aead-neon build/rpi4/aead-neon/aead_check
	$(Q)$(MAKE) --no-print-directory BOARD=helios4 MODE=qemu BUILD=build/helios4/arm-check \
	  build/helios4/arm-check/aead_check
	CAIRN_AEAD_EXPECT_KERNEL=neon qemu-aarch64 -cpu cortex-a72 build/rpi4/aead-neon/aead_check --gtest_brief=1
	CAIRN_AEAD_EXPECT_KERNEL=neon CAIRN_FEC_EXPECT_KERNEL=neon \
	  qemu-arm -cpu cortex-a9 build/helios4/arm-check/aead_check --gtest_brief=1
	CAIRN_AEAD_EXPECT_KERNEL=mbedtls CAIRN_FEC_EXPECT_KERNEL=portable \
	  qemu-arm -cpu cortex-a9,neon=off build/helios4/arm-check/aead_check --gtest_brief=1

# libFuzzer targets (clang): `make fuzz` builds them; `make test` runs each
# for a bounded time. Run one longer: build/host/fuzz/fuzz/NAME -max_total_time=600
fuzz: deps
	$(Q)$(MAKE) --no-print-directory MODE=fuzz build-fuzzers

.PHONY: build-fuzzers fuzz
build-fuzzers: $(FUZZERS)

.PHONY: build-tests
build-tests: $(BINS) $(UNIT) $(TOOLS)

ifneq ($(BOARD_RUN),)
# A board with an emulator: its release cairnd and cairn serve the GBS
# benchmark under qemu-user to a native client, which reports the guest's own
# memory (the board's memory class), with as many concurrent uploads as its
# max_connections allows (more are refused at accept).
bench: deps
	$(Q)$(MAKE) --no-print-directory MODE=release $(BINS)
	$(Q)$(MAKE) --no-print-directory BOARD=host MODE=release build/host/release/bench/gbs_bench
	$(Q)build/host/release/bench/gbs_bench --board-build $(BUILD) --runner '$(BOARD_RUN)' \
	  --uploads $(or $(LIMIT_max_connections),100)
else
bench: deps
	$(Q)$(MAKE) --no-print-directory MODE=release $(BINS) $(BENCHES)
	$(Q)$(DEBIAN_PYTHON) test/bench/run_benches.py --build build/$(BOARD)/release
endif

check-layers:
	$(Q)sh test/check_layers.sh

# Soak: the SIGKILL crash test of test/integration/test_store_crash.py with
# many more kills than `make test` runs (KILLS=N, default 2000;
# CAIRN_CRASH_SEED=S repeats a run), the power-cut test of
# test/integration/test_power_cut.py with 2000 cuts (make test runs 200;
# CUTS=N, CAIRN_POWERCUT_SEED=S repeats a run), then the whole-disk image
# tests:
# qemu-arm64's under qemu-system and rpi4's checked without the hardware
# (together about 8 minutes with the image builds: too long for make test;
# docs/boards.md).
.PHONY: soak
soak: deps
	$(Q)$(MAKE) --no-print-directory MODE=asan build-tests
	$(Q)CAIRN_CRASH_KILLS=$(or $(KILLS),2000) $(DEBIAN_PYTHON) test/run_tests.py --build build/$(BOARD)/asan \
	  -k acknowledged_writes_survive integration
	$(Q)$(MAKE) --no-print-directory MODE=release build/$(BOARD)/release/cairnd
	$(Q)CAIRN_POWERCUT_CUTS=$(or $(CUTS),2000) $(DEBIAN_PYTHON) test/run_tests.py --build build/$(BOARD)/asan \
	  -k loses_no_acknowledged_write integration
	$(Q)$(MAKE) --no-print-directory BOARD=qemu-arm64 image-test
	$(Q)$(MAKE) --no-print-directory BOARD=rpi4 image-test

help:
	@sed -n '3,18p' Makefile | sed 's/^# \{0,1\}//'

clean:
	rm -rf build
