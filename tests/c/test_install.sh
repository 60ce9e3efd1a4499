#!/bin/sh
# test_install.sh MAKE BUILD CC SANFLAGS EXAMPLE
#
# Proves that a program written against hnswc.h alone builds and runs from an
# installed copy of the library: `make install PREFIX=$BUILD/prefix`, then the
# example is compiled outside the source tree with nothing but what
# `pkg-config hnswc` says, linked once against the shared library and once
# against the static one, and run (it creates, searches, saves and reloads).
set -eu
make_cmd=$1
build=$2
cc=$3
sanflags=$4
example=$(cd "$(dirname "$5")" && pwd)/$(basename "$5")

root=$(pwd)
prefix=$root/$build/prefix
work=$root/$build/install-test
rm -rf "$prefix" "$work"
mkdir -p "$work"

echo "test_install: make install PREFIX=$prefix"
$make_cmd --no-print-directory install BUILD="$build" PREFIX="$prefix" > "$work/install.log" 2>&1 || {
    cat "$work/install.log" >&2
    echo "test_install: make install failed" >&2
    exit 1
}
# $BUILD/hnswc.pc now holds the test prefix; remove it so that a later real
# `make install` regenerates it with its own PREFIX instead of installing
# this one (the rule depends only on the Makefile).
rm -f "$build/hnswc.pc"
for f in include/hnswc.h lib/libhnswc.a lib/libhnswc.so lib/pkgconfig/hnswc.pc; do
    [ -e "$prefix/$f" ] || { echo "test_install: $prefix/$f was not installed" >&2; exit 1; }
done

PKG_CONFIG_PATH=$prefix/lib/pkgconfig
export PKG_CONFIG_PATH
got_prefix=$(pkg-config --variable=prefix hnswc)
if [ "$got_prefix" != "$prefix" ]; then
    echo "test_install: installed hnswc.pc says prefix=$got_prefix, expected $prefix" >&2
    echo "test_install: (is \$(BUILD)/hnswc.pc regenerated when PREFIX changes?)" >&2
    exit 1
fi
cflags=$(pkg-config --cflags hnswc)
libs=$(pkg-config --libs hnswc)
libs_static=$(pkg-config --static --libs hnswc | sed 's/-lhnswc/-l:libhnswc.a/')

cd "$work"
# Outside the source tree: only the installed header can be found.
# shellcheck disable=SC2086
$cc $sanflags -std=c11 -Wall -Wextra -Werror $cflags "$example" -o quickstart-shared \
    $libs -Wl,-rpath,"$prefix/lib"
# shellcheck disable=SC2086
$cc $sanflags -std=c11 -Wall -Wextra -Werror $cflags "$example" -o quickstart-static $libs_static
if ! ldd ./quickstart-shared | grep -q "$prefix/lib/libhnswc.so"; then
    echo "test_install: quickstart-shared does not use $prefix/lib/libhnswc.so:" >&2
    ldd ./quickstart-shared >&2
    exit 1
fi
if ldd ./quickstart-static | grep -q libhnswc; then
    echo "test_install: quickstart-static is linked against a shared libhnswc" >&2
    exit 1
fi
for v in shared static; do
    echo "test_install: running the example linked against the $v library"
    ./quickstart-$v
done
echo "test_install: OK (install, pkg-config, shared and static builds of $(basename "$example"))"
