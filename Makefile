# hnswc -- top-level build.
#
#   make              the library (static + shared) and the command-line tool
#   make test         every test (installs what it needs first)
#   make demo         the Fashion-MNIST benchmark against hnswlib and faiss
#   make bench        the C benchmark against hnswlib in one process
#   make install PREFIX=/usr/local   (then ldconfig runs if that is a system
#                     library folder; scripts/after-install.sh)
#
# Each area keeps its own rules in a fragment included at the bottom:
# tests/tests.mk, cli/cli.mk, python/python.mk, bench/bench.mk.
#
# Variables: CC (gcc or clang), BUILD (output folder), SAN (a -fsanitize=
# list, e.g. SAN=address,undefined; sanitizer builds go to their own BUILD).

CC      ?= cc
BUILD   ?= build
PREFIX  ?= /usr/local
OPT     ?= -O3
SAN     ?=

WARN     = -Wall -Wextra -Werror
CPPFLAGS += -Iinclude -D_POSIX_C_SOURCE=200809L
SANFLAGS = $(if $(SAN),-fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all,)
# No -march: the distance kernels pick their instruction set at run time.
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS = -std=c11 $(CFLAGS) -fPIC -fvisibility=hidden $(WARN) -pthread $(SANFLAGS) -MMD -MP
LDLIBS_LIB = -pthread -lm

LIB_SRC = $(wildcard src/*.c)
LIB_OBJ = $(patsubst src/%.c,$(BUILD)/obj/src/%.o,$(LIB_SRC))
LIB_A   = $(BUILD)/libhnswc.a
LIB_SO  = $(BUILD)/libhnswc.so

.PHONY: all lib install deps test demo bench clean FORCE
FORCE:
.DEFAULT_GOAL := all

all: lib

lib: $(LIB_A) $(LIB_SO)

$(BUILD)/obj/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(LIB_A): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(LIB_SO): $(LIB_OBJ)
	$(CC) -shared $(SANFLAGS) -Wl,-soname,libhnswc.so.0 -o $@ $^ $(LDLIBS_LIB)

# Written on every install (FORCE), so it always carries this install's PREFIX.
$(BUILD)/hnswc.pc: FORCE
	@mkdir -p $(BUILD)
	printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: hnswc\nDescription: HNSW approximate nearest neighbour search in C11\nVersion: %s\nLibs: -L$${libdir} -lhnswc\nLibs.private: -pthread -lm\nCflags: -I$${includedir}\n' \
	  '$(PREFIX)' "$$(sed -n 's/^#define HNSWC_VERSION "\(.*\)"/\1/p' include/hnswc.h)" > $@

# CMake's find_package(hnswc): cmake/hnswcConfig.cmake (relocatable, no
# substitution) and a version file with this version's numbers.
$(BUILD)/hnswcConfigVersion.cmake: cmake/hnswcConfigVersion.cmake.in include/hnswc.h
	@mkdir -p $(BUILD)
	v=$$(sed -n 's/^#define HNSWC_VERSION "\(.*\)"/\1/p' include/hnswc.h); \
	sed -e "s/@VERSION@/$$v/" -e "s/@MAJOR@/$${v%%.*}/" \
	    -e "s/@MINOR@/$$(echo $$v | cut -d. -f2)/" \
	    -e "s/@SIZEOF_VOID_P@/$$(getconf LONG_BIT | awk '{print $$1 / 8}')/" $< > $@

CMAKE_DIR = $(PREFIX)/lib/cmake/hnswc

install: lib $(BUILD)/hnswc.pc $(BUILD)/hnswcConfigVersion.cmake $(INSTALL_EXTRA)
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	    $(DESTDIR)$(CMAKE_DIR) $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(LIB_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/libhnswc.so.0
	ln -sf libhnswc.so.0 $(DESTDIR)$(PREFIX)/lib/libhnswc.so
	install -m 644 include/hnswc.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/hnswc.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 644 cmake/hnswcConfig.cmake $(BUILD)/hnswcConfigVersion.cmake $(DESTDIR)$(CMAKE_DIR)/
	$(if $(INSTALL_BIN),install -m 755 $(INSTALL_BIN) $(DESTDIR)$(PREFIX)/bin/,)
	@sh scripts/after-install.sh '$(PREFIX)/lib' '$(DESTDIR)'

# Installs the Debian packages the tests, benchmarks and demo need (as root,
# only those missing). scripts/install-deps.sh lists them.
deps:
	@sh scripts/install-deps.sh

# Fragments append their test targets to TEST_TARGETS.
TEST_TARGETS =

clean:
	rm -rf build

-include $(wildcard tests/tests.mk cli/cli.mk python/python.mk tests/viz/viz.mk tests/readme/readme.mk bench/bench.mk tests/fuzz/fuzz.mk tests/soak/soak.mk)

test: deps
	@set -e; for t in $(TEST_TARGETS); do echo "== $$t"; $(MAKE) --no-print-directory $$t; done

-include $(LIB_OBJ:.o=.d)
