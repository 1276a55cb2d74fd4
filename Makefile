# dropship — one Makefile for binaries, tests, sanitizer builds and install.
# Modules are found by convention: internal/<mod>/*.c go into one static
# library, cmd/<bin>/*.c become build/<bin>, tests/unit/test_*.c and
# tests/e2e/test_*.c become one CUnit executable each, tests/fuzz/fuzz_*.c
# one libFuzzer harness each (build-fuzz/fuzz/), tests/bench/bench_*.c one
# micro-benchmark each (build/bench/).

CC        ?= cc
PREFIX    ?= /usr/local
DESTDIR   ?=
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

.PHONY: all deps run test test-only check lint clean install bench tests fuzz fuzz-build bench-route
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

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/dropship/migrations $(DESTDIR)$(PREFIX)/share/dropship/sql
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 migrations/*.sql $(DESTDIR)$(PREFIX)/share/dropship/migrations/
	cp -R sql/. $(DESTDIR)$(PREFIX)/share/dropship/sql/

clean:
	rm -rf build build-san build-fuzz build-clang

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
