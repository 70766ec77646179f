# changelogd - one non-recursive Makefile.
#
#   make            build everything into build/ and bin/
#   make run        deps + build + start the server on an embedded default
#   make test       deps + build + every test suite (what CI runs)
#   make clock      the time-related tests a year ahead, TZ far from UTC
#   make asan       the same tests built with address+undefined sanitizers
#   make bench      benchmarks with peers run beside them (prints ratios)
#   make cluster    3 NATS nodes, the writer, two edges, HAProxy (tests/cluster)
#   make check-deps layering check (tools/scripts/check-deps.sh)
#
# Layers (a directory is a layer; each links only the ones below it):
#
#   core <- store <- net      changelogd
#                 <- replay   changelog-replay       (uses tools/cli)
#                 <- tools    changelog-admin, changelog-audit (uses tools/cli)
#   core <- tools/cli         what the command-line programs share
#
# tests/bench/bench_main.c (changelog-bench) is a load client that uses
# none of them; the benchmark programs tests/bench/*_bench.c link them all.

CC      ?= cc
BUILD   ?= build/release
BIN     ?= bin
SAN     ?=
WERROR  ?= $(if $(CI),-Werror,)

PKGS    := libwebsockets msgpack jansson lmdb sqlite3 libmariadb openssl libnats libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes \
           -Wmissing-prototypes -Wpointer-arith -Wvla -Wno-unused-parameter
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all
OPT     := $(if $(SAN),-O1 -fno-omit-frame-pointer $(SANFLAGS),-O2)
CFLAGS  += -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) $(WERROR) $(PKG_CFLAGS) -MMD -MP
LDFLAGS += $(if $(SAN),$(SANFLAGS),)
LDLIBS  += $(PKG_LIBS) -lpthread -lm

LAYERS  := core store net replay tools tools/cli
src_of   = $(filter-out %_main.c,$(wildcard $(1)/*.c))
objs_of  = $(patsubst %.c,$(BUILD)/%.o,$(call src_of,$(1)))
lib_of   = $(BUILD)/lib$(subst /,-,$(1)).a
LIBS    := $(foreach l,$(LAYERS),$(if $(call src_of,$(l)),$(call lib_of,$(l))))
# what each layer links, higher layers first (a layer never links above itself)
libs_core   = $(call lib_of,core)
libs_cli    = $(call lib_of,tools/cli) $(libs_core)
libs_store  = $(call lib_of,store) $(libs_core)
libs_net    = $(call lib_of,net) $(libs_store)
libs_replay = $(call lib_of,replay) $(call lib_of,tools/cli) $(libs_store)
libs_tools  = $(call lib_of,tools) $(call lib_of,tools/cli) $(libs_store)
libs_bench  = $(call lib_of,tools) $(call lib_of,replay) $(call lib_of,net) \
              $(call lib_of,tools/cli) $(libs_store)
libs_tests/bench =
existing    = $(filter $(LIBS),$(1))

# binary name : its directory : stem (main lives in <directory>/<stem>_main.c;
# it links libs_<directory>)
BIN_SPECS := changelogd:net:changelogd changelog-replay:replay:replay \
             changelog-admin:tools:admin changelog-audit:tools:audit \
             changelog-post:tools:post \
             changelog-bench:tests/bench:bench
spec_name  = $(word 1,$(subst :, ,$(1)))
spec_layer = $(word 2,$(subst :, ,$(1)))
spec_main  = $(spec_layer)/$(word 3,$(subst :, ,$(1)))_main.c
BIN_SPECS_PRESENT := $(foreach s,$(BIN_SPECS),$(if $(wildcard $(call spec_main,$(s))),$(s)))
BINS := $(foreach s,$(BIN_SPECS_PRESENT),$(BIN)/$(call spec_name,$(s)))

# unit tests: tests/unit/test_<layer>_<file>.c tests <layer>/<file>.c and
# links libs_<layer> (test_tools_progress.c: tools/cli/progress.c, linked
# through libs_tools)
TEST_SRC  := $(wildcard tests/unit/test_*.c)
TEST_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRC))
TEST_SUPPORT := $(filter-out $(TEST_SRC),$(wildcard tests/unit/*.c))
TEST_SUPPORT_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(TEST_SUPPORT))
test_layer = $(word 2,$(subst _, ,$(notdir $(1))))

# benchmark programs: tests/bench/<name>_bench.c, linked with every layer
BENCH_SRC  := $(wildcard tests/bench/*_bench.c)
BENCH_BINS := $(patsubst tests/bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
BENCH_SUPPORT_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(filter-out $(BENCH_SRC) %_main.c,$(wildcard tests/bench/*.c)))

.DEFAULT_GOAL := all
.PHONY: all deps run test unit integration clock asan bench cluster check-deps clean fuzz soak
# fuzz targets and their corpus replay (tests/fuzz/fuzz.mk sets FUZZ_REPLAY_BINS
# and the fuzz-run rule; the replay binaries run in `make unit`)
FUZZ_REPLAY_BINS :=
-include tests/fuzz/fuzz.mk

# test helpers that are no unit test and not installed (tests/nats/)
HELPER_BINS := $(BUILD)/tests/nats-jsdump

all: $(BINS) $(TEST_BINS) $(BENCH_BINS) $(FUZZ_REPLAY_BINS) $(HELPER_BINS)

$(BUILD)/tests/nats-jsdump: $(BUILD)/tests/nats/jsdump.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

define archive_rule
$(call lib_of,$(1)): $(call objs_of,$(1))
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
$(BUILD)/bench/$(basename $(notdir $(1))): $(BUILD)/tests/bench/$(basename $(notdir $(1))).o $(BENCH_SUPPORT_OBJS) $(call existing,$(libs_bench))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach b,$(BENCH_SRC),$(eval $(call bench_rule,$(b))))

deps:
	@tools/scripts/deps.sh $(DEPS_GROUP)

run:
	@tools/scripts/deps.sh run
	@$(MAKE) --no-print-directory all
	@tools/scripts/run.sh

unit: all
	@CL_BIN=$(abspath $(BIN)) tests/run-unit.sh $(TEST_BINS) $(FUZZ_REPLAY_BINS)

integration: all
	@CL_BIN=$(abspath $(BIN)) CL_TEST_TOOLS=$(abspath $(BUILD)/tests) tests/run-integration.sh

# the time-related suites again, a year ahead and far from UTC (libfaketime)
clock: all
	@CL_BIN=$(abspath $(BIN)) tests/run-clock.sh $(TEST_BINS)

test:
	@tools/scripts/deps.sh test
	@$(MAKE) --no-print-directory check-deps
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration
	@$(MAKE) --no-print-directory clock

asan:
	@tools/scripts/deps.sh test
	@$(MAKE) --no-print-directory BUILD=build/asan BIN=build/asan/bin SAN=1 unit integration

bench:
	@tools/scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@CL_BIN=$(abspath $(BIN)) CL_BENCH=$(abspath $(BUILD)/bench) tests/bench/run.sh

cluster:
	@tools/scripts/deps.sh test
	@$(MAKE) --no-print-directory all
	@CL_BIN=$(abspath $(BIN)) /usr/bin/python3 tests/cluster/cluster.py

fuzz:
	@tools/scripts/deps.sh test
	@$(MAKE) --no-print-directory fuzz-run

soak: all
	@CL_BIN=$(abspath $(BIN)) tests/soak.sh

check-deps:
	@tools/scripts/check-deps.sh

clean:
	rm -rf build bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- install / uninstall / man (docs/operations.md, "Installing") ----
#   make install [PREFIX=/usr/local] [DESTDIR=]   make uninstall (same vars)
# changelogd goes to sbin and man section 8 (a system daemon); the tools to
# bin and section 1. The web UI goes to $(PREFIX)/share/changelogd/web, where
# the installed server finds it next to its binary without a checkout.
PREFIX     ?= /usr/local
SYSCONFDIR ?= /etc
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
PKGDATADIR ?= $(PREFIX)/share/changelogd
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SCDOC      ?= scdoc
MAN_SRC    := $(wildcard docs/man/*.scd)
MAN_PAGES  := $(patsubst docs/man/%.scd,build/man/%,$(MAN_SRC))
TOOL_BINS  := $(filter-out $(BIN)/changelogd,$(BINS))
WEB_FILES  := $(wildcard web/*)
DASH_FILES := $(wildcard tools/dashboard/*.php)
UNIT_OUT   := build/dist/changelogd.service
CONF_SRC   := tools/dist/changelogd.conf
.PHONY: man programs install uninstall

man: $(MAN_PAGES)

# what a package build needs: the binaries and the man pages, no tests
programs: $(BINS) $(MAN_PAGES)

build/man/%: docs/man/%.scd
	@mkdir -p $(dir $@)
	@command -v $(SCDOC) >/dev/null || { echo "make: scdoc is missing (apt-get install scdoc)" >&2; exit 1; }
	$(SCDOC) < $< > $@

$(UNIT_OUT): tools/dist/changelogd.service.in Makefile
	@mkdir -p $(dir $@)
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' $< > $@

# the unit depends on SBINDIR, so it is remade on every install
install: $(BINS) $(MAN_PAGES)
	@rm -f $(UNIT_OUT)
	@$(MAKE) --no-print-directory $(UNIT_OUT)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(PKGDATADIR)/web \
		$(DESTDIR)$(PKGDATADIR)/dashboard $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/changelogd
	install -m 0755 $(BIN)/changelogd $(DESTDIR)$(SBINDIR)/changelogd
	install -m 0755 $(TOOL_BINS) $(DESTDIR)$(BINDIR)/
	install -m 0644 $(WEB_FILES) $(DESTDIR)$(PKGDATADIR)/web/
	install -m 0644 $(DASH_FILES) $(DESTDIR)$(PKGDATADIR)/dashboard/
	install -m 0644 $(filter %.1,$(MAN_PAGES)) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(filter %.8,$(MAN_PAGES)) $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 $(UNIT_OUT) $(DESTDIR)$(UNITDIR)/changelogd.service
	@# an existing config is the administrator's: never overwritten
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/changelogd/changelogd.conf ]; then \
		echo "keeping $(DESTDIR)$(SYSCONFDIR)/changelogd/changelogd.conf"; \
	else \
		echo "install -m 0644 $(CONF_SRC) $(DESTDIR)$(SYSCONFDIR)/changelogd/changelogd.conf"; \
		install -m 0644 $(CONF_SRC) $(DESTDIR)$(SYSCONFDIR)/changelogd/changelogd.conf; \
	fi

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/changelogd \
		$(patsubst $(BIN)/%,$(DESTDIR)$(BINDIR)/%,$(TOOL_BINS)) \
		$(patsubst build/man/%,$(DESTDIR)$(MANDIR)/man1/%,$(filter %.1,$(MAN_PAGES))) \
		$(patsubst build/man/%,$(DESTDIR)$(MANDIR)/man8/%,$(filter %.8,$(MAN_PAGES))) \
		$(DESTDIR)$(UNITDIR)/changelogd.service
	rm -rf $(DESTDIR)$(PKGDATADIR)
	@# the config goes only if it is still the shipped example
	@if cmp -s $(CONF_SRC) $(DESTDIR)$(SYSCONFDIR)/changelogd/changelogd.conf; then \
		rm -f $(DESTDIR)$(SYSCONFDIR)/changelogd/changelogd.conf; \
		rmdir $(DESTDIR)$(SYSCONFDIR)/changelogd 2>/dev/null || true; \
	elif [ -e $(DESTDIR)$(SYSCONFDIR)/changelogd/changelogd.conf ]; then \
		echo "keeping the edited $(DESTDIR)$(SYSCONFDIR)/changelogd/changelogd.conf"; \
	fi
