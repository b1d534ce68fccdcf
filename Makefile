# fitd — build, test, run, bench.
#
#   make          build everything into build/ (the binary is build/fitd)
#   make run      install what is missing, build, start fitd on ./var/fitd.db
#   make test     install what is missing, build, run every test
#   make asan     the whole test suite built with -fsanitize=address,undefined
#   make tsan     the whole test suite built with -fsanitize=thread (slow: not in CI)
#   make bench    benchmarks against peers (figures, not tests)
#
# BUILD picks the output folder, so several builds can live side by side.

BUILD   ?= build
CC      ?= cc
OPT     ?= -O2
CORE_OPT ?= -O3
SAN     ?=
VERSION := 0.1.0
GIT_REV := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

PKGS    := openblas jansson libmicrohttpd sqlite3 nettle zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter -Werror
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS := -std=c11 -D_DEFAULT_SOURCE -fno-math-errno -fopenmp-simd $(WARN) $(CFLAGS) $(SAN) \
              -Icore -Iserver -I$(BUILD)/gen $(PKG_CFLAGS) \
              -DFITD_VERSION='"$(VERSION)"' -DFITD_GIT_REV='"$(GIT_REV)"' -MMD -MP
LDLIBS  := $(PKG_LIBS) -lpthread -lm
TEST_LIBS := $(shell pkg-config --libs cmocka libcurl 2>/dev/null)

CORE_SRC   := $(wildcard core/*.c)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
INTEG_SRC  := $(wildcard tests/integration/test_*.c)
MIGRATIONS := $(sort $(wildcard migrations/*.sql))
WEB_FILES  := $(sort $(wildcard server/web/*.html server/web/*.css server/web/*.js server/web/*.svg))

CORE_OBJ   := $(CORE_SRC:%.c=$(BUILD)/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/embedded.o
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
INTEG_BIN  := $(INTEG_SRC:tests/integration/%.c=$(BUILD)/tests/%)
TEST_SUPPORT := $(BUILD)/tests/support.o

.PHONY: all run test test-only asan tsan bench deps deps-build deps-bench e2e deps-e2e clean check-core-deps fuzz docker-check crash-test soak

all: $(BUILD)/fitd $(UNIT_BIN) $(INTEG_BIN)

$(BUILD)/libnn.a: $(CORE_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BUILD)/libfitd.a: $(SERVER_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BUILD)/fitd: $(BUILD)/server/main.o $(BUILD)/libfitd.a $(BUILD)/libnn.a
	@echo "LD $@"
	@$(CC) $(SAN) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c | check-core-deps
	@mkdir -p $(@D)
	@echo "CC $<"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The numeric core is where the time goes: let the compiler vectorize its loops.
$(BUILD)/core/%.o: core/%.c | check-core-deps
	@mkdir -p $(@D)
	@echo "CC $<"
	@$(CC) $(ALL_CFLAGS) $(CORE_OPT) -c -o $@ $<

# Migrations, the API document and the dashboard's files are compiled into the
# binary as byte arrays.
$(BUILD)/gen/embedded.c: $(MIGRATIONS) api-docs/openapi.yaml $(WEB_FILES) server/embed.sh
	@mkdir -p $(@D)
	sh server/embed.sh $(MIGRATIONS) api-docs/openapi.yaml $(WEB_FILES) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/embedded.o: $(BUILD)/gen/embedded.c
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes -c -o $@ $<

$(BUILD)/tests/support.o: tests/support.c tests/support.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(TEST_SUPPORT) $(BUILD)/libfitd.a $(BUILD)/libnn.a
	@mkdir -p $(@D)
	@echo "LD $@"
	@$(CC) $(ALL_CFLAGS) -Itests -o $@ $(filter-out %.h,$^) $(TEST_LIBS) $(LDLIBS)

$(BUILD)/tests/%: tests/integration/%.c $(TEST_SUPPORT) $(BUILD)/libfitd.a $(BUILD)/libnn.a
	@mkdir -p $(@D)
	@echo "LD $@"
	@$(CC) $(ALL_CFLAGS) -Itests -o $@ $(filter-out %.h,$^) $(TEST_LIBS) $(LDLIBS)

# The core must stay free of HTTP, SQL, JSON and threads (STYLE.md rule 1).
check-core-deps:
	@if grep -nE '#include *[<"](microhttpd|jansson|sqlite3|pthread)' core/*.c core/*.h; then \
	  echo "core/ must not include HTTP, JSON, SQL or thread headers" >&2; exit 1; fi

deps:
	@sh tests/deps.sh build test

deps-build:
	@sh tests/deps.sh build

deps-bench:
	@sh tests/deps.sh build test bench

# The build runs in a second make: this one read pkg-config's flags when it
# started, before deps-build could install pkg-config and the -dev packages.
run: deps-build
	$(MAKE) $(BUILD)/fitd
	@mkdir -p var
	$(BUILD)/fitd serve --db var/fitd.db

test: deps
	$(MAKE) all
	sh tests/run.sh $(BUILD)

# Without installing: for a machine that already has the packages.
test-only: all
	sh tests/run.sh $(BUILD)

asan: deps
	$(MAKE) BUILD=build/asan OPT=-O1 CORE_OPT= \
	  SAN='-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer' all
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  FITD_TEST_SANITIZED=1 sh tests/run.sh build/asan

# Data races in the pool, the HTTP threads and the math threads. A report makes
# the process exit non-zero (TSan's exitcode), which fails its test.
tsan: deps
	$(MAKE) BUILD=build/tsan OPT=-O1 CORE_OPT= SAN='-fsanitize=thread -fno-omit-frame-pointer' all
	TSAN_OPTIONS=second_deadlock_stack=1 FITD_TEST_SANITIZED=1 FITD_TEST_SLOW=10 \
	  sh tests/run.sh build/tsan

# The dashboard end to end in headless Chromium (playwright-core from npm).
e2e: deps-e2e
	$(MAKE) $(BUILD)/fitd
	sh tests/e2e/run.sh $(BUILD)

deps-e2e:
	@sh tests/deps.sh build test e2e

bench: deps-bench
	$(MAKE) $(BUILD)/fitd $(BUILD)/bench/bench_core
	sh bench/run.sh $(BUILD)
	sh bench/service.sh $(BUILD)
	sh bench/sweep.sh $(BUILD)

$(BUILD)/bench/bench_core: bench/bench_core.c $(BUILD)/libfitd.a $(BUILD)/libnn.a
	@mkdir -p $(@D)
	@echo "LD $@"
	@$(CC) $(ALL_CFLAGS) -o $@ $(filter-out %.h,$^) $(LDLIBS)

# 100+ kill -9 at random moments against one fitd; prints the figures.
crash-test: all
	FITD_BIN=$(BUILD)/fitd bash tests/crash/crash_test.sh --kills 120 --max-seconds 600 --jobs 150 --datasets 30

# 1,000 small jobs through one fitd: every job succeeds; RSS compared with after the first.
soak: all
	sh tests/soak/soak.sh $(BUILD) 1000

# libFuzzer targets (clang): each runs FUZZ_SECONDS; any crash fails the run.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz: deps
	sh tests/fuzz/run.sh $(BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The Docker image, proven with podman where no Docker engine runs (as root; see
# ../shared/tools/docker-check's README): build, run, tests/deploy/then.sh,
# restart. Each run gets its own volume, removed afterwards.
DOCKER_CHECK      ?= ../shared/tools/docker-check
DOCKER_CHECK_PORT ?= 18080

docker-check:
	@vol=fitd-check-$$$$; \
	RUN_ARGS="-v $$vol:/var/lib/fitd -e FITD_WORKERS=1" THEN='bash tests/deploy/then.sh' \
	  $(DOCKER_CHECK) . http://127.0.0.1:$(DOCKER_CHECK_PORT)/healthz 8080; rc=$$?; \
	podman volume rm -f $$vol > /dev/null 2>&1; exit $$rc

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
