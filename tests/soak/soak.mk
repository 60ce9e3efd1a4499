# tests/soak/soak.mk -- the long concurrency soak (opt-in: not in make test).
#
#   make soak        SOAK_SECONDS (default 300) of adds, updates, deletes,
#                    searches and saves from many threads on one index,
#                    then the checks of tests/soak/soak.c; runs under
#                    nice -n 19 so that it only takes what the machine has
#                    spare. The figures it prints are the ones quoted in
#                    docs/RELIABILITY.md.
#   make soak-tsan   the same under ThreadSanitizer (clang), for
#                    SOAK_TSAN_SECONDS (default 120): no data race.
#   SOAK_KIND=flat   either of them on the exact (flat) index; SOAK_KIND=sq8
#                    on HNSW walking on SQ8 codes (trained mid-run); default
#                    hnsw. The deleter of every kind marks labels deleted or
#                    removes them for good (hnswc_remove), half and half.
#
# SOAK_ADDERS and SOAK_SEARCHERS set the thread counts (default 3 and 3,
# plus a deleter and a saver).

SOAK_SECONDS      ?= 300
SOAK_TSAN_SECONDS ?= 120
SOAK_ADDERS       ?= 3
SOAK_SEARCHERS    ?= 3
SOAK_KIND         ?= hnsw

.PHONY: soak soak-tsan

$(BUILD)/soak: tests/soak/soak.c $(LIB_A) include/hnswc.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=c11 $(CFLAGS) $(WARN) -pthread $(SANFLAGS) $< -o $@ $(LIB_A) -pthread -lm

soak: $(BUILD)/soak
	TSAN_OPTIONS="second_deadlock_stack=1 history_size=4" \
	  nice -n 19 $(BUILD)/soak $(SOAK_SECONDS) $(SOAK_ADDERS) $(SOAK_SEARCHERS) $(BUILD) $(SOAK_KIND)

soak-tsan:
	$(MAKE) --no-print-directory BUILD=build/tsan SAN=thread CC=clang \
	  SOAK_SECONDS=$(SOAK_TSAN_SECONDS) soak
