# dropship — one Makefile for binaries, tests, sanitizer builds and install.
# Modules are found by convention: internal/<mod>/*.c go into one static
# library, cmd/<bin>/*.c become build/<bin>, tests/unit/test_*.c and
# tests/e2e/test_*.c become one CUnit executable each, tests/fuzz/fuzz_*.c
# one libFuzzer harness each (build-fuzz/fuzz/), tests/bench/bench_*.c one
# micro-benchmark each (build/bench/).

CC        ?= cc
PREFIX    ?= /usr/local
DESTDIR   ?=
# Where make install puts what is not under bin/ (docs/deploy.md).
SYSCONFDIR       ?= /etc
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
SYSUSERS_DIR     ?= $(PREFIX)/lib/sysusers.d
MANDIR           ?= $(PREFIX)/share/man
DATADIR          ?= $(PREFIX)/share/dropship
DOCDIR           ?= $(PREFIX)/share/doc/dropship
SANITIZE  ?=
FUZZ_SECONDS ?= 60
PKGS      := libevent libevent_openssl libevent_pthreads openssl libpq jansson inih
TEST_PKGS := cunit

ifeq ($(SANITIZE),)
BUILD     ?= build
OPT       ?= -O2
else
BUILD     ?= build-san
OPT       ?= -O1
SANFLAGS  := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

WARN      := -Wall -Wextra -Wpedantic -Wstrict-prototypes -Wmissing-prototypes -Wshadow -Wformat=2 -Werror
CPPFLAGS  += -D_GNU_SOURCE -Iinternal -Itests $(shell pkg-config --cflags $(PKGS) $(TEST_PKGS) 2>/dev/null)
CFLAGS    ?= $(OPT) -g
CFLAGS    += -std=c17 $(WARN) -pthread $(SANFLAGS) -MMD -MP
LDFLAGS   += -pthread $(SANFLAGS)
LDLIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
TEST_LIBS := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

LIB_SRCS  := $(wildcard internal/*/*.c)
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
LIB       := $(BUILD)/libdropship.a
BIN_NAMES := $(notdir $(patsubst %/,%,$(wildcard cmd/*/)))
BINS      := $(BIN_NAMES:%=$(BUILD)/%)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
E2E_SRCS  := $(wildcard tests/e2e/test_*.c)
TEST_SUPPORT := $(wildcard tests/support/*.c)
TEST_SUPPORT_OBJS := $(TEST_SUPPORT:%.c=$(BUILD)/obj/%.o)
TEST_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%) \
             $(E2E_SRCS:tests/e2e/%.c=$(BUILD)/tests/e2e/%)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

# Objects are never deleted as intermediates: rebuilds stay incremental.
.SECONDARY:

.PHONY: all deps run test test-only check lint clean install uninstall bench tests fuzz fuzz-build bench-route
all: $(BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# The schema version dropshipd checks at start: the newest migration. The
# folder is a prerequisite: adding, removing or renaming a file rebuilds it.
SCHEMA_FILE    := $(lastword $(sort $(wildcard migrations/[0-9][0-9][0-9][0-9]_*.sql)))
SCHEMA_VERSION := $(firstword $(subst _, ,$(patsubst migrations/%,%,$(SCHEMA_FILE))))
$(BUILD)/obj/cmd/dropshipd/startup.o: CPPFLAGS += -DDROPSHIP_SCHEMA_VERSION='"$(SCHEMA_VERSION)"'
$(BUILD)/obj/cmd/dropshipd/startup.o: $(SCHEMA_FILE) migrations

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# Static pattern rule: only the binaries of cmd/ match, never test or .d files.
.SECONDEXPANSION:
bin_objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard cmd/$(1)/*.c))
$(BINS): $(BUILD)/%: $$(call bin_objs,$$*) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIB) $(LDLIBS)

$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(TEST_SUPPORT_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIB) $(TEST_LIBS) $(LDLIBS)

$(BUILD)/tests/e2e/%: $(BUILD)/obj/tests/e2e/%.o $(TEST_SUPPORT_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIB) $(TEST_LIBS) $(LDLIBS)

$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $(filter %.o,$^) $(LIB) $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIB) $(LDLIBS)

tests: $(BINS) $(TEST_BINS)

# Installs missing Debian packages (apt-get as root, else sudo); silent when all present.
deps:
	@sh .ci/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@sh .ci/run-dev.sh $(BUILD)

test: deps
	@$(MAKE) --no-print-directory test-only

test-only: tests
	@sh tests/run.sh $(BUILD)

check: deps
	@$(MAKE) --no-print-directory SANITIZE=address,undefined test-only

bench: deps
	@$(MAKE) --no-print-directory all
	@sh .ci/bench.sh $(BUILD)

# route_plan_order alone, ns per order (docs/bench.md); BENCH_ROUTE_ITERS per scenario.
bench-route: deps
	@$(MAKE) --no-print-directory $(BUILD)/bench/bench_route
	$(BUILD)/bench/bench_route $(BENCH_ROUTE_ITERS)

# Every harness for FUZZ_SECONDS from its seeds in tests/fuzz/corpus/ (.ci/fuzz.sh).
# Its own build: clang, libFuzzer's coverage hooks in every object, ASan+UBSan.
fuzz:
	@sh .ci/deps.sh clang
	@$(MAKE) --no-print-directory CC=clang BUILD=build-fuzz \
		SANITIZE=fuzzer-no-link,address,undefined fuzz-build
	@sh .ci/fuzz.sh build-fuzz $(FUZZ_SECONDS)

fuzz-build: $(FUZZ_BINS)

# Every path on a kept cluster with 1,000,000 orders of history next to an
# empty database (docs/bench.md, Scale); not part of test.
.PHONY: scale
scale: deps
	@$(MAKE) --no-print-directory all
	@sh .ci/scale.sh $(BUILD)

# Banned calls: unbounded copies and unchecked conversions. Then the module
# include graph: no cycles, server/server.h for the server only. Then lines
# over 120 columns (a tab counts 8) in internal/ and cmd/.
lint:
	@! grep -rnE '\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|gets)[[:space:]]*\(' \
		--include='*.c' --include='*.h' cmd internal tests || \
		{ echo "lint: banned function (use snprintf, explicit lengths, strtol with checks)"; exit 1; }
	@sh .ci/include-graph.sh internal
	@for f in internal/*/*.[ch] cmd/*/*.[ch]; do expand -t 8 "$$f" | \
		awk -v f="$$f" 'length($$0) > 120 { print f ":" FNR ": " length($$0) " columns (at most 120)"; bad = 1 } \
		END { exit bad }' || exit 1; done
	@echo "lint: ok"

# Units, man pages and the example configuration name the default paths
# (/usr/local, /etc/dropship); they are rewritten for the ones of this install.
INSTALL_PATHS = sed -e 's|/usr/local/lib/systemd/system|$(SYSTEMD_UNIT_DIR)|g' \
	-e 's|/usr/local/lib/sysusers.d|$(SYSUSERS_DIR)|g' \
	-e 's|/usr/local/share/doc/dropship|$(DOCDIR)|g' \
	-e 's|/usr/local/share/dropship|$(DATADIR)|g' \
	-e 's|/usr/local/|$(PREFIX)/|g' -e 's|/etc/dropship|$(SYSCONFDIR)/dropship|g'
MAN8      := man/dropshipd.8 man/dropshipctl.8
UNITS     := deploy/systemd/dropshipd.service deploy/systemd/dropship-migrate.service
ETCDIR     = $(DESTDIR)$(SYSCONFDIR)/dropship

# Binaries, migrations and views (dropshipctl migrate finds them from its own
# path), systemd units, man pages, docs and examples. The configuration goes
# to $(SYSCONFDIR)/dropship only when there is none: an operator's is never
# replaced; the example beside the migrations always is.
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(DATADIR)/migrations $(DESTDIR)$(DATADIR)/sql \
		$(DESTDIR)$(SYSTEMD_UNIT_DIR) $(DESTDIR)$(SYSUSERS_DIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(DOCDIR)/examples
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 migrations/*.sql $(DESTDIR)$(DATADIR)/migrations/
	cp -R sql/. $(DESTDIR)$(DATADIR)/sql/
	for f in $(UNITS); do $(INSTALL_PATHS) $$f > $(DESTDIR)$(SYSTEMD_UNIT_DIR)/$${f##*/} && \
		chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/$${f##*/} || exit 1; done
	install -m 0644 deploy/systemd/dropship.sysusers $(DESTDIR)$(SYSUSERS_DIR)/dropship.conf
	for f in $(MAN8); do $(INSTALL_PATHS) $$f > $(DESTDIR)$(MANDIR)/man8/$${f##*/} && \
		chmod 0644 $(DESTDIR)$(MANDIR)/man8/$${f##*/} || exit 1; done
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 deploy/haproxy/haproxy.cfg deploy/systemd/dropshipd.service.d/low-port.conf \
		$(DESTDIR)$(DOCDIR)/examples/
	sed -e 's|^tls_cert = var/tls/|tls_cert = $(SYSCONFDIR)/dropship/tls/|' \
		-e 's|^tls_key = var/tls/|tls_key = $(SYSCONFDIR)/dropship/tls/|' \
		config/dropshipd.conf > $(DESTDIR)$(DATADIR)/dropshipd.conf.example
	chmod 0644 $(DESTDIR)$(DATADIR)/dropshipd.conf.example
	@grep -q '^tls_key = /' $(DESTDIR)$(DATADIR)/dropshipd.conf.example || \
		{ echo "install: config/dropshipd.conf: tls_cert/tls_key lines not found"; exit 1; }
	@if [ ! -e $(ETCDIR)/dropshipd.conf ]; then \
		[ -d $(ETCDIR) ] || install -d -m 0750 $(ETCDIR); \
		install -m 0640 $(DESTDIR)$(DATADIR)/dropshipd.conf.example $(ETCDIR)/dropshipd.conf; \
		echo "install: created $(ETCDIR)/dropshipd.conf"; \
		if [ -z "$(DESTDIR)" ] && getent group dropship >/dev/null; then \
			chgrp dropship $(ETCDIR) $(ETCDIR)/dropshipd.conf; fi; \
	else echo "install: kept $(ETCDIR)/dropshipd.conf"; fi

# Everything install added except $(SYSCONFDIR)/dropship, which holds the
# operator's configuration, keys and certificates.
uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/bin/,$(BIN_NAMES))
	rm -f $(addprefix $(DESTDIR)$(SYSTEMD_UNIT_DIR)/,$(notdir $(UNITS)))
	rm -f $(DESTDIR)$(SYSUSERS_DIR)/dropship.conf
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(MAN8)))
	rm -rf $(DESTDIR)$(DATADIR) $(DESTDIR)$(DOCDIR)

clean:
	rm -rf build build-san build-fuzz build-clang

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
