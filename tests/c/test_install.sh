#!/bin/sh
# test_install.sh MAKE BUILD CC SANFLAGS EXAMPLE
#
# Proves that a program written against hnswc.h alone builds and runs from an
# installed copy of the library: `make install PREFIX=$BUILD/prefix`, then the
# example is compiled outside the source tree the two ways C users find a
# library -- with nothing but what `pkg-config hnswc` says, and as a CMake
# project with find_package(hnswc) -- each linked once against the shared
# library and once against the static one, and run (it creates, searches,
# saves and reloads).
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
for f in include/hnswc.h lib/libhnswc.a lib/libhnswc.so lib/pkgconfig/hnswc.pc \
         lib/cmake/hnswc/hnswcConfig.cmake lib/cmake/hnswc/hnswcConfigVersion.cmake; do
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

# --- CMake: find_package(hnswc) and the imported targets -------------------
command -v cmake >/dev/null 2>&1 || {
    echo "test_install: cmake not found (make deps installs it)" >&2; exit 1; }
version=$(sed -n 's/^#define HNSWC_VERSION "\(.*\)"/\1/p' "$root/include/hnswc.h")
mkdir -p "$work/cmake-src"
cp "$example" "$work/cmake-src/example.c"
cat > "$work/cmake-src/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.13)
project(hnswc_consumer C)
find_package(hnswc $version REQUIRED)
if(NOT hnswc_VERSION STREQUAL "$version")
  message(FATAL_ERROR "hnswc_VERSION is '\${hnswc_VERSION}', expected $version")
endif()
# versions it must refuse: a later one, another major (or minor, before 1.0)
foreach(v 99.0 1.0 0.0)
  find_package(hnswc \${v} QUIET)
  if(hnswc_FOUND)
    message(FATAL_ERROR "find_package(hnswc \${v}) accepted version \${hnswc_VERSION}")
  endif()
endforeach()
find_package(hnswc $version REQUIRED)
add_executable(example-shared example.c)
target_link_libraries(example-shared PRIVATE hnswc::hnswc)
add_executable(example-static example.c)
target_link_libraries(example-static PRIVATE hnswc::hnswc_static)
CMAKE
echo "test_install: cmake project with find_package(hnswc $version)"
# shellcheck disable=SC2086
cmake -S "$work/cmake-src" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$(command -v "$cc")" -DCMAKE_C_FLAGS="$sanflags -Wall -Wextra -Werror" \
    -DCMAKE_EXE_LINKER_FLAGS="$sanflags" > "$work/cmake.log" 2>&1 &&
    cmake --build "$work/cmake-build" >> "$work/cmake.log" 2>&1 || {
    cat "$work/cmake.log" >&2
    echo "test_install: the CMake project did not configure or build" >&2
    exit 1
}
cd "$work/cmake-build"
if ! ldd ./example-shared | grep -q "$prefix/lib/libhnswc.so"; then
    echo "test_install: example-shared (cmake) does not use $prefix/lib/libhnswc.so:" >&2
    ldd ./example-shared >&2
    exit 1
fi
if ldd ./example-static | grep -q libhnswc; then
    echo "test_install: example-static (cmake) is linked against a shared libhnswc" >&2
    exit 1
fi
for v in shared static; do
    echo "test_install: running the cmake-built example linked against the $v library"
    ./example-$v
done
echo "test_install: OK (install; pkg-config and cmake; shared and static builds of $(basename "$example"))"
