# tests/fuzz/fuzz.mk -- libFuzzer harnesses for every input path a hostile
# file or buffer reaches (included by the top-level Makefile).
#
#   make fuzz            builds the harnesses and their seed corpora with
#                        clang -fsanitize=fuzzer,address,undefined into
#                        build/fuzz (the library and the CLI readers are
#                        instrumented too)
#   make test-fuzz       make fuzz, then a short run of each harness
#                        (FUZZ_SECONDS each, part of make test)
#   make fuzz-long       the long run (FUZZ_LONG_PLAN: inputs per harness,
#                        10.5 million in all) under nice -n 19; the table it
#                        prints is the one in docs/RELIABILITY.md
#   make fuzz-run FUZZ_TARGETS="hnswc" FUZZ_SECONDS=600   one harness, longer
#
# Harnesses (tests/fuzz/fuzz_*.c):
#   hnswc        hnswc_deserialize and hnswc_load on the same bytes
#   hnswlib      hnswc_load_hnswlib
#   read_FORMAT  the CLI's dataset_read for fvecs, bvecs, npy, idx, text,
#                hdf5 (plus the metric and neighbors readers), and auto
#                (format detected from the contents)
#   gt_cache     the ground-truth cache of `hnswc bench`
# Each successful load is then used (search, add, update, delete, save,
# reload; see tests/fuzz/fuzz_util.h) and its promises checked.
#
# A crash, sanitizer report, leak, timeout or allocation above 2 GB fails
# the run; the input is kept in build/fuzz/crashes/. Reproduce with
#   build/fuzz/fuzz_NAME build/fuzz/crashes/NAME-crash-...

FUZZ_CC       ?= clang
FUZZ_BUILD    ?= build/fuzz
FUZZ_READERS   = fvecs bvecs npy idx text hdf5 auto
FUZZ_TARGETS  ?= hnswc hnswlib $(addprefix read_,$(FUZZ_READERS)) gt_cache
FUZZ_SECONDS  ?= 8
# Inputs per harness in the long run: more where an input is cheap and the
# format rich; HDF5 goes through the (uninstrumented) HDF5 library at about
# a tenth of the others' speed.
FUZZ_LONG_PLAN ?= hnswc:2500000 hnswlib:1500000 read_fvecs:700000 read_bvecs:700000 \
                  read_npy:700000 read_idx:700000 read_text:700000 read_auto:700000 \
                  read_hdf5:300000 gt_cache:2000000

TEST_TARGETS += test-fuzz

.PHONY: fuzz fuzz-bins test-fuzz fuzz-run fuzz-long

# The build runs in a sub-make with its own BUILD folder, compiler and
# sanitizers, so the library and CLI objects are rebuilt instrumented
# (fuzzer-no-link: coverage for the fuzzer, its main only in the harnesses).
fuzz:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) \
	  SAN=fuzzer-no-link,address,undefined fuzz-bins

FUZZ_LINK   = -fsanitize=fuzzer,address,undefined
FUZZ_CFLAGS = $(CPPFLAGS) -Isrc -Icli -Itests/fuzz $(CLI_HDF5_CFLAGS) -std=c11 $(CFLAGS) $(WARN) \
              -pthread $(SANFLAGS)
# The CLI's own link line (its optional HDF5 and zlib as configured), plus
# HDF5 and zlib for the seed maker, which writes such files.
FUZZ_LIBS   = $(LIB_A) $(CLI_LIBS) $(CLI_HDF5_LIBS) -lz -lm -pthread
# The CLI without its main(): whatever files the readers are split into.
FUZZ_CLI_OBJ = $(filter-out %/main.o,$(CLI_OBJ))
FUZZ_UTIL_OBJ = $(BUILD)/obj/fuzz/fuzz_util.o

.PRECIOUS: $(BUILD)/obj/fuzz/%.o $(BUILD)/obj/fuzz/read_%.o

fuzz-bins: $(addprefix $(BUILD)/fuzz_,$(FUZZ_TARGETS)) $(BUILD)/seeds/.stamp

$(BUILD)/obj/fuzz/%.o: tests/fuzz/%.c tests/fuzz/fuzz_util.h include/hnswc.h
	@mkdir -p $(dir $@)
	$(CC) $(FUZZ_CFLAGS) -c $< -o $@

$(BUILD)/obj/fuzz/read_%.o: tests/fuzz/fuzz_reader.c tests/fuzz/fuzz_util.h cli/readers.h include/hnswc.h
	@mkdir -p $(dir $@)
	$(CC) $(FUZZ_CFLAGS) -DFZ_FORMAT=FMT_$(shell echo $* | tr a-z A-Z) -DFZ_IS_HDF5=$(if $(filter hdf5,$*),1,0) -c $< -o $@

$(BUILD)/fuzz_hnswc $(BUILD)/fuzz_hnswlib: $(BUILD)/fuzz_%: $(BUILD)/obj/fuzz/fuzz_%.o $(FUZZ_UTIL_OBJ) $(LIB_A)
	$(CC) $(FUZZ_LINK) $^ -o $@ $(FUZZ_LIBS)

$(BUILD)/fuzz_read_%: $(BUILD)/obj/fuzz/read_%.o $(FUZZ_UTIL_OBJ) $(FUZZ_CLI_OBJ) $(LIB_A)
	$(CC) $(FUZZ_LINK) $^ -o $@ $(FUZZ_LIBS)

$(BUILD)/fuzz_gt_cache: $(BUILD)/obj/fuzz/fuzz_gt_cache.o $(FUZZ_UTIL_OBJ) $(FUZZ_CLI_OBJ) $(LIB_A)
	$(CC) $(FUZZ_LINK) $^ -o $@ $(FUZZ_LIBS)

# The seed maker links the same instrumented objects, without libFuzzer.
$(BUILD)/make_seeds: $(BUILD)/obj/fuzz/make_seeds.o $(FUZZ_CLI_OBJ) $(LIB_A)
	$(CC) -fsanitize=fuzzer-no-link,address,undefined $^ -o $@ $(FUZZ_LIBS)

$(BUILD)/seeds/.stamp: $(BUILD)/make_seeds $(wildcard tests/data/*.bin)
	@rm -rf $(BUILD)/seeds
	ASAN_OPTIONS=detect_leaks=0 $(BUILD)/make_seeds $(BUILD)/seeds tests/data
	@touch $@

# Part of make test: a short run of every harness. The seed is fixed so
# that every CI run tries the same inputs in the same order (a fresh clone
# has an empty corpus); a random search belongs to fuzz-run and fuzz-long.
test-fuzz: fuzz
	@FUZZ_FLAGS="-seed=1 $(FUZZ_FLAGS)" sh tests/fuzz/run.sh $(FUZZ_BUILD) time $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-run: fuzz
	@sh tests/fuzz/run.sh $(FUZZ_BUILD) time $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The long run (docs/RELIABILITY.md): niced to the lowest priority so that
# it only takes what the machine has spare.
fuzz-long: fuzz
	@FUZZ_NICE=19 sh tests/fuzz/run.sh $(FUZZ_BUILD) runs 0 $(FUZZ_LONG_PLAN)

