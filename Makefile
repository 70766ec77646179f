# changelogd - one non-recursive Makefile.
#
#   make            build everything into build/ and bin/
#   make run        deps + build + start the server on an embedded default
#   make test       deps + build + every test suite (what CI runs)
#   make clock      the time-related tests a year ahead, TZ far from UTC
#   make asan       the same tests built with address+undefined sanitizers
#   make bench      benchmarks with peers run beside them (prints ratios)
#   make check-deps layering check (core <- store <- net/replay <- tools)

CC      ?= cc
BUILD   ?= build/release
BIN     ?= bin
SAN     ?=
WERROR  ?= $(if $(CI),-Werror,)

PKGS    := libwebsockets msgpack jansson lmdb sqlite3 libmariadb openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes \
           -Wmissing-prototypes -Wpointer-arith -Wvla -Wno-unused-parameter
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all
OPT     := $(if $(SAN),-O1 -fno-omit-frame-pointer $(SANFLAGS),-O2)
CFLAGS  += -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) $(WERROR) $(PKG_CFLAGS) -MMD -MP
LDFLAGS += $(if $(SAN),$(SANFLAGS),)
LDLIBS  += $(PKG_LIBS) -lpthread -lm

LAYERS  := core store net replay tools
src_of   = $(filter-out %_main.c,$(wildcard $(1)/*.c))
objs_of  = $(patsubst %.c,$(BUILD)/%.o,$(call src_of,$(1)))
LIBS    := $(foreach l,$(LAYERS),$(if $(call src_of,$(l)),$(BUILD)/lib$(l).a))
# what each layer links, higher layers first (a layer never links above itself)
libs_core   = $(BUILD)/libcore.a
libs_store  = $(BUILD)/libstore.a $(libs_core)
libs_net    = $(BUILD)/libnet.a $(libs_store)
libs_replay = $(BUILD)/libreplay.a $(libs_store)
libs_tools  = $(BUILD)/libtools.a $(BUILD)/libreplay.a $(BUILD)/libnet.a $(libs_store)
existing    = $(filter $(LIBS),$(1))

# binary name : its layer  (main lives in <layer>/<stem>_main.c)
BIN_SPECS := changelogd:net:changelogd changelog-replay:replay:replay \
             changelog-admin:tools:admin changelog-audit:tools:audit \
             changelog-bench:tools:bench
spec_name  = $(word 1,$(subst :, ,$(1)))
spec_layer = $(word 2,$(subst :, ,$(1)))
spec_main  = $(spec_layer)/$(word 3,$(subst :, ,$(1)))_main.c
BIN_SPECS_PRESENT := $(foreach s,$(BIN_SPECS),$(if $(wildcard $(call spec_main,$(s))),$(s)))
BINS := $(foreach s,$(BIN_SPECS_PRESENT),$(BIN)/$(call spec_name,$(s)))

# unit tests: tests/unit/test_<layer>_<file>.c tests <layer>/<file>.c
TEST_SRC  := $(wildcard tests/unit/test_*.c)
TEST_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRC))
TEST_SUPPORT := $(filter-out $(TEST_SRC),$(wildcard tests/unit/*.c))
TEST_SUPPORT_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(TEST_SUPPORT))
test_layer = $(word 2,$(subst _, ,$(notdir $(1))))

# benchmark programs: tests/bench/<name>_bench.c, linked like tools
BENCH_SRC  := $(wildcard tests/bench/*_bench.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
BENCH_SUPPORT_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(filter-out $(BENCH_SRC),$(wildcard tests/bench/*.c)))

.DEFAULT_GOAL := all
.PHONY: all deps run test unit integration clock asan bench check-deps clean fuzz soak
# fuzz targets and their corpus replay (tests/fuzz/fuzz.mk sets FUZZ_REPLAY_BINS
# and the fuzz-run rule; the replay binaries run in `make unit`)
FUZZ_REPLAY_BINS :=
-include tests/fuzz/fuzz.mk

all: $(BINS) $(TEST_BINS) $(BENCH_BINS) $(FUZZ_REPLAY_BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

define archive_rule
$(BUILD)/lib$(1).a: $(call objs_of,$(1))
	@mkdir -p $$(dir $$@)
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach l,$(LAYERS),$(eval $(call archive_rule,$(l))))

define bin_rule
$(BIN)/$(call spec_name,$(1)): $(BUILD)/$(basename $(call spec_main,$(1))).o $(call existing,$(libs_$(call spec_layer,$(1))))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach s,$(BIN_SPECS_PRESENT),$(eval $(call bin_rule,$(s))))

define test_rule
$(BUILD)/tests/$(basename $(notdir $(1))): $(BUILD)/tests/unit/$(basename $(notdir $(1))).o $(TEST_SUPPORT_OBJS) $(call existing,$(libs_$(call test_layer,$(basename $(1)))))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach t,$(TEST_SRC),$(eval $(call test_rule,$(t))))

define bench_rule
$(BUILD)/bench/$(basename $(notdir $(1))): $(BUILD)/tests/bench/$(basename $(notdir $(1))).o $(BENCH_SUPPORT_OBJS) $(call existing,$(libs_tools))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach b,$(BENCH_SRC),$(eval $(call bench_rule,$(b))))

deps:
	@tools/deps.sh $(DEPS_GROUP)

run:
	@tools/deps.sh run
	@$(MAKE) --no-print-directory all
	@tools/run.sh

unit: all
	@CL_BIN=$(abspath $(BIN)) tests/run-unit.sh $(TEST_BINS) $(FUZZ_REPLAY_BINS)

integration: all
	@CL_BIN=$(abspath $(BIN)) tests/run-integration.sh

# the time-related suites again, a year ahead and far from UTC (libfaketime)
clock: all
	@CL_BIN=$(abspath $(BIN)) tests/run-clock.sh $(TEST_BINS)

test:
	@tools/deps.sh test
	@$(MAKE) --no-print-directory check-deps
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration
	@$(MAKE) --no-print-directory clock

asan:
	@tools/deps.sh test
	@$(MAKE) --no-print-directory BUILD=build/asan BIN=build/asan/bin SAN=1 unit integration

bench:
	@tools/deps.sh bench
	@$(MAKE) --no-print-directory all
	@CL_BIN=$(abspath $(BIN)) CL_BENCH=$(abspath $(BUILD)/bench) tests/bench/run.sh

fuzz:
	@tools/deps.sh test
	@$(MAKE) --no-print-directory fuzz-run

soak: all
	@CL_BIN=$(abspath $(BIN)) tests/soak.sh

check-deps:
	@tools/check-deps.sh

clean:
	rm -rf build bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
