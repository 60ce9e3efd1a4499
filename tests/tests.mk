# tests/tests.mk -- the C test suite (cmocka), included by the top-level Makefile.
#
#   make test-c        library + every tests/c/test_*.c, the README quickstart
#                      check, and an install + pkg-config and CMake builds of the example
#   make test-c-asan   the same under AddressSanitizer + UBSan (build/asan)
#   make test-c-tsan   the concurrency tests under ThreadSanitizer (build/tsan):
#                      TSAN_TESTS below (the concurrency tests, the worker pool)
#
# Each tests/c/test_*.c is a standalone cmocka program linked against the
# static library. Every binary runs even when an earlier one fails, so all
# output is visible; the target fails if any failed.
#
# ASAN_OPTIONS: the tests ask for absurd sizes on purpose (hnswc_reserve of
# 2^40 elements...); the library must answer NOMEM, so ASan must let malloc
# return NULL instead of aborting.
#
# Fashion-MNIST is decompressed once into $(BUILD)/data (the library and the
# tests do not link zlib) and passed to the tests through HNSWC_FMNIST_TRAIN
# and HNSWC_FMNIST_TEST. Sanitizer builds shrink data sizes through
# HNSWC_TEST_SCALE; the checks stay the same.

TEST_TARGETS += test-c test-c-asan test-c-tsan test-c-neon

.PHONY: test-c test-c-asan test-c-tsan test-c-bins test-c-run test-c-quickstart \
        test-c-readme test-c-install test-c-neon

FMNIST_DIR   ?= /usr/share/datasets/fashion-mnist
CTEST_SRC     = $(sort $(wildcard tests/c/test_*.c))
CTEST_BIN     = $(patsubst tests/c/%.c,$(BUILD)/tests/%,$(CTEST_SRC))
CTEST_UTIL    = $(BUILD)/tests/obj/testutil.o
CTEST_CFLAGS  = $(CPPFLAGS) -Isrc -std=c11 $(CFLAGS) $(WARN) -pthread $(SANFLAGS)
CTEST_LIBS    = $(LIB_A) -lcmocka -pthread -lm
# Which test binaries test-c-run runs (names without directory); all by default.
C_TESTS      ?= $(notdir $(CTEST_BIN))
# Data sizes under sanitizers: a fifth (recall thresholds unchanged).
TEST_SCALE   ?= $(if $(SAN),0.2,1)
CTEST_DATA    = $(BUILD)/data/fmnist-train-images.idx3 $(BUILD)/data/fmnist-t10k-images.idx3
CTEST_ENV     = HNSWC_FMNIST_TRAIN=$(BUILD)/data/fmnist-train-images.idx3 \
                HNSWC_FMNIST_TEST=$(BUILD)/data/fmnist-t10k-images.idx3 \
                HNSWC_TEST_SCALE=$(TEST_SCALE) \
                HNSWC_TEST_DATA=$(CURDIR)/tests/data \
                ASAN_OPTIONS=allocator_may_return_null=1 \
                UBSAN_OPTIONS=print_stacktrace=1 \
                TSAN_OPTIONS="second_deadlock_stack=1 history_size=4"

# ---------------------------------------------------------------------------
# Top-level targets
# ---------------------------------------------------------------------------

test-c: test-c-run test-c-readme test-c-quickstart test-c-install

test-c-asan:
	$(MAKE) --no-print-directory BUILD=build/asan SAN=address,undefined test-c

# ThreadSanitizer is slow: only the concurrency tests (the stress test, the
# element limit under concurrent batches, removal under everything else, a
# mapped index searched while it is written). clang's TSan is
# used because it is the better supported of the two (gcc's works too:
# make test-c-tsan TSAN_CC=gcc).
TSAN_CC ?= clang
test-c-tsan:
	$(MAKE) --no-print-directory BUILD=build/tsan$(if $(filter-out clang,$(TSAN_CC)),-$(TSAN_CC)) \
	  SAN=thread CC=$(TSAN_CC) C_TESTS="$(TSAN_TESTS)" test-c-run
TSAN_TESTS = test_concurrency test_limit test_remove_concurrency test_mmap_concurrency test_indegree \
             test_relayout_concurrency test_threads

# ---------------------------------------------------------------------------
# Building and running the test programs
# ---------------------------------------------------------------------------

test-c-bins: $(CTEST_BIN)

# The tests that read Fashion-MNIST (tu_fmnist_load); the TSan run does
# without them. Named here so that a run of just one of them (C_TESTS=...)
# still converts the data first.
CTEST_NEEDS_DATA = test_recall test_sq8 test_sq8only

test-c-run: $(LIB_A) $(addprefix $(BUILD)/tests/,$(C_TESTS)) \
            $(if $(filter $(CTEST_NEEDS_DATA),$(C_TESTS)),$(CTEST_DATA))
	@failed=""; for t in $(C_TESTS); do \
	  echo "-- $(BUILD)/tests/$$t"; \
	  $(CTEST_ENV) $(BUILD)/tests/$$t || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-c ($(BUILD)): FAILED:$$failed"; exit 1; fi; \
	echo "test-c ($(BUILD)): all $(words $(C_TESTS)) test programs passed"

$(CTEST_UTIL): tests/c/testutil.c tests/c/testutil.h include/hnswc.h
	@mkdir -p $(dir $@)
	$(CC) $(CTEST_CFLAGS) -c $< -o $@

$(BUILD)/tests/test_%: tests/c/test_%.c $(CTEST_UTIL) $(LIB_A) tests/c/testutil.h include/hnswc.h
	@mkdir -p $(dir $@)
	$(CC) $(CTEST_CFLAGS) $< $(CTEST_UTIL) -o $@ $(CTEST_LDFLAGS) $(CTEST_LIBS)

# test_faults injects failures into the calls the library makes by routing
# them through its own wrappers (GNU ld --wrap): nothing in src/ knows.
CTEST_WRAP = malloc calloc realloc aligned_alloc strdup strndup fopen fdopen fwrite write fsync \
             fclose rename mkstemp pthread_create
$(BUILD)/tests/test_faults: CTEST_LDFLAGS = $(foreach f,$(CTEST_WRAP),-Wl,--wrap=$(f))

# Decompressed once per build folder; a missing data set fails here (and the
# tests fail too if run by hand without it): `make deps` installs it.
$(BUILD)/data/fmnist-%-images.idx3: $(FMNIST_DIR)/%-images-idx3-ubyte.gz
	@mkdir -p $(dir $@)
	gzip -dc $< > $@.tmp && mv $@.tmp $@

# ---------------------------------------------------------------------------
# The README quickstart: the README's code block must be examples/quickstart.c,
# and that program must build with -Werror and run.
# ---------------------------------------------------------------------------

QUICKSTART = examples/quickstart.c

test-c-readme:
	@sh tests/c/check_readme.sh README.md $(QUICKSTART)

$(BUILD)/tests/quickstart: $(QUICKSTART) $(LIB_A) include/hnswc.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=c11 $(CFLAGS) $(WARN) -pthread $(SANFLAGS) $< -o $@ $(LIB_A) -pthread -lm

test-c-quickstart: $(BUILD)/tests/quickstart
	cd $(BUILD)/tests && ./quickstart

# make install into $(BUILD)/prefix, then build the example the ways a user
# would -- with pkg-config only, and as a CMake project with
# find_package(hnswc) -- against the shared and the static library.
test-c-install: lib
	@sh tests/c/test_install.sh "$(MAKE)" "$(BUILD)" "$(CC)" "$(SANFLAGS)" $(QUICKSTART)

# ---------------------------------------------------------------------------
# The NEON kernels (distance.c, quant.c) cannot run here, but must compile:
# every src/*.c is compiled for aarch64 with clang against Debian's arm64
# cross libc headers (libc6-dev-arm64-cross, from make deps), with -Werror.
# ---------------------------------------------------------------------------

NEON_SYSROOT ?= /usr/aarch64-linux-gnu

test-c-neon:
	@mkdir -p $(BUILD)/neon
	@for f in $(LIB_SRC); do \
	  clang --target=aarch64-linux-gnu -isystem $(NEON_SYSROOT)/include $(CPPFLAGS) \
	    -std=c11 -O2 $(WARN) -c $$f -o $(BUILD)/neon/$$(basename $$f .c).o || exit 1; \
	done; echo "test-c-neon: every src/*.c compiles for aarch64 (NEON kernels included)"
