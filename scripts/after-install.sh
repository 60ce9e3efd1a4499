#!/bin/sh
# after-install.sh LIBDIR DESTDIR -- run by `make install` once the files
# are in place, so that programs find libhnswc.so.0 at run time:
#
#   - DESTDIR set (a staged install for a package): nothing; the package's
#     own scripts run ldconfig on the target system.
#   - LIBDIR is one the dynamic linker searches (/usr/local/lib, /usr/lib...:
#     listed by `ldconfig -v`): refresh its cache with ldconfig (as root;
#     otherwise say to run it), as the cache is what ld.so consults.
#   - any other LIBDIR (PREFIX=$HOME/.local, /opt/...): say how to point
#     programs at it.
set -u
libdir=$1
destdir=$2
[ -n "$destdir" ] && exit 0
ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)
[ -x "$ldconfig" ] || { echo "make install: no ldconfig here; libhnswc.so.0 is in $libdir" >&2; exit 0; }
# -N -X: only list the folders it would scan, change nothing (works as any user)
if "$ldconfig" -v -N -X 2>/dev/null | grep -q "^$libdir:"; then
    if [ "$(id -u)" = 0 ]; then
        "$ldconfig" && echo "make install: ran ldconfig ($libdir is a system library folder)"
    else
        echo "make install: run 'sudo ldconfig' so that programs find libhnswc.so.0 in $libdir"
    fi
else
    echo "make install: $libdir is not searched by the dynamic linker; programs linked"
    echo "  against libhnswc.so need -Wl,-rpath,$libdir (or LD_LIBRARY_PATH=$libdir),"
    echo "  or link the static library (pkg-config --static --libs hnswc)"
fi
