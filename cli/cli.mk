# cli/cli.mk -- the hnswc command-line tool and its tests (included by the
# top-level Makefile, which defines CC, BUILD, CPPFLAGS, ALL_CFLAGS, SANFLAGS
# and LIB_A).
#
#   make                 builds $(BUILD)/hnswc with the library
#   make test-cli        builds it and runs tests/cli (pytest)

# HDF5 comes from Debian's libhdf5-dev, which installs outside the default
# search paths (serial flavour); ask pkg-config, else use Debian's layout.
# -isystem keeps warnings of its headers out of our -Werror build.
CLI_HDF5_CFLAGS := $(patsubst -I%,-isystem %,$(shell pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial))
CLI_HDF5_LIBS   := $(shell pkg-config --libs hdf5 2>/dev/null || echo -L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5)

CLI_SRC = $(wildcard cli/*.c)
CLI_OBJ = $(patsubst cli/%.c,$(BUILD)/obj/cli/%.o,$(CLI_SRC))
CLI_BIN = $(BUILD)/hnswc

# Python with NumPy, h5py and pytest (Debian's; the first python3 on PATH may
# lack NumPy).
CLI_PYTHON ?= /usr/bin/python3

INSTALL_BIN = $(CLI_BIN)

.PHONY: cli test-cli
all: $(CLI_BIN)
install: $(CLI_BIN)
cli: $(CLI_BIN)

$(BUILD)/obj/cli/%.o: cli/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CLI_HDF5_CFLAGS) $(ALL_CFLAGS) -c $< -o $@

# The library is linked statically so the tool runs from the build folder.
$(CLI_BIN): $(CLI_OBJ) $(LIB_A)
	$(CC) $(SANFLAGS) -pthread -o $@ $(CLI_OBJ) $(LIB_A) $(CLI_HDF5_LIBS) -lz -lm

TEST_TARGETS += test-cli

test-cli: $(CLI_BIN)
	HNSWC_BIN=$(abspath $(CLI_BIN)) $(CLI_PYTHON) -m pytest -q -p no:cacheprovider tests/cli

-include $(CLI_OBJ:.o=.d)
