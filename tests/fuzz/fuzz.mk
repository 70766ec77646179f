# tests/fuzz/fuzz.mk - fuzz targets (included by the top Makefile).
#
# Each target tests/fuzz/fuzz_<name>.c defines LLVMFuzzerTestOneInput and
# is built twice:
#   $(BUILD)/fuzz-replay/fuzz_<name>   normal compiler and flags, with
#       tests/fuzz/standalone.c as main: runs every file of
#       tests/fuzz/corpus/<name>/ once (a regression test in `make unit`).
#   build/fuzz/fuzz_<name>             clang 14 + libFuzzer + ASan + UBSan,
#       with the layers compiled again into build/fuzz/obj; `make fuzz-run`
#       (or `make fuzz`) runs each for FUZZ_SECONDS through tests/fuzz/run.sh.
# FUZZ_TARGETS="a b" limits fuzz-run to some targets.

FUZZ_NAMES   := event_decode client_message query_params replay_sql url_token
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(FUZZ_NAMES)
FUZZ_CC      ?= $(if $(shell command -v clang-14 2>/dev/null),clang-14,clang)
FUZZ_DIR     := build/fuzz

# what each target links (normal build), and whether it needs seed.c
fuzz_libs_event_decode   = $(libs_core)
fuzz_libs_client_message = $(libs_net)
fuzz_libs_query_params   = $(libs_core)
fuzz_libs_replay_sql     = $(libs_replay)
fuzz_libs_url_token      = $(libs_net)
fuzz_seed_client_message = 1
fuzz_seed_query_params   = 1
fuzz_seed_replay_sql     = 1
fuzz_extra = $(if $(fuzz_seed_$(1)),$(2)/tests/fuzz/seed.o)

FUZZ_REPLAY_BINS += $(foreach n,$(FUZZ_NAMES),$(BUILD)/fuzz-replay/fuzz_$(n))

define fuzz_replay_rule
$(BUILD)/fuzz-replay/standalone_$(1).o: tests/fuzz/standalone.c
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) -DFUZZ_CORPUS_DIR='"$$(abspath tests/fuzz/corpus/$(1))"' -c -o $$@ $$<

$(BUILD)/fuzz-replay/fuzz_$(1): $(BUILD)/tests/fuzz/fuzz_$(1).o $(BUILD)/fuzz-replay/standalone_$(1).o $(call fuzz_extra,$(1),$(BUILD)) $(call existing,$(fuzz_libs_$(1)))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach n,$(FUZZ_NAMES),$(eval $(call fuzz_replay_rule,$(n))))

# ---- libFuzzer builds (clang) -------------------------------------------------
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer $(WARN) \
               $(PKG_CFLAGS) $(FUZZ_SAN) -MMD -MP
FUZZ_LAYER_SRC  := $(foreach l,core store net replay tools/cli,$(call src_of,$(l)))
FUZZ_LAYER_OBJS := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_LAYER_SRC))
FUZZ_BINS := $(foreach n,$(FUZZ_TARGETS),$(FUZZ_DIR)/fuzz_$(n))

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

define fuzz_bin_rule
$(FUZZ_DIR)/fuzz_$(1): $(FUZZ_DIR)/obj/tests/fuzz/fuzz_$(1).o $(call fuzz_extra,$(1),$(FUZZ_DIR)/obj) $(FUZZ_LAYER_OBJS)
	$$(FUZZ_CC) $$(FUZZ_SAN) -fsanitize=fuzzer -o $$@ $$^ $$(LDLIBS)
endef
$(foreach n,$(FUZZ_NAMES),$(eval $(call fuzz_bin_rule,$(n))))

.PHONY: fuzz-run fuzz-build
fuzz-build: $(FUZZ_BINS)

fuzz-run: fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_BIN=$(abspath $(FUZZ_DIR)) tests/fuzz/run.sh $(FUZZ_TARGETS)

-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)
