# dropship — one Makefile for binaries, tests, sanitizer builds and install.
# Modules are found by convention: internal/<mod>/*.c go into one static
# library, cmd/<bin>/*.c become build/<bin>, tests/unit/test_*.c and
# tests/e2e/test_*.c become one CUnit executable each.

CC        ?= cc
PREFIX    ?= /usr/local
DESTDIR   ?=
SANITIZE  ?=
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

# Objects are never deleted as intermediates: rebuilds stay incremental.
.SECONDARY:

.PHONY: all deps run test test-only check lint clean install bench tests
all: $(BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

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

# Every path on a kept cluster with 1,000,000 orders of history next to an
# empty database (docs/bench.md, Scale); not part of test.
.PHONY: scale
scale: deps
	@$(MAKE) --no-print-directory all
	@sh .ci/scale.sh $(BUILD)

# Banned calls: unbounded copies and unchecked conversions.
lint:
	@! grep -rnE '\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|gets)[[:space:]]*\(' \
		--include='*.c' --include='*.h' cmd internal tests || \
		{ echo "lint: banned function (use snprintf, explicit lengths, strtol with checks)"; exit 1; }
	@echo "lint: ok"

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/dropship/migrations $(DESTDIR)$(PREFIX)/share/dropship/sql
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 migrations/*.sql $(DESTDIR)$(PREFIX)/share/dropship/migrations/
	cp -R sql/. $(DESTDIR)$(PREFIX)/share/dropship/sql/

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
