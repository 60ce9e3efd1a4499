#!/usr/bin/env python3
"""fetch_hnswlib.py -- hnswlib's C++ headers, at the version pip installs.

  fetch_hnswlib.py DEST

The C++ benchmarks (bench/bench_vs_hnswlib.cpp, bench/bench_remove.cpp)
compile hnswlib's header-only library with -march=native, as
`pip install hnswlib` compiles it. They must measure the same hnswlib the
Python comparisons install from PyPI (bench/requirements.txt pins 0.8.0),
not Debian's libhnswlib-dev (0.6.2, two releases older), so this script
downloads that release's source distribution from PyPI, checks its SHA-256
(the hash PyPI publishes for the file), and extracts the headers into
DEST/hnswlib/. DEST/VERSION then holds the version; the Makefile puts DEST
first on the include path.

Standard library only (it runs under Debian's /usr/bin/python3 before any
venv exists). Nothing is written unless the download checks out.
"""

import hashlib
import io
import os
import sys
import tarfile
import urllib.request

VERSION = "0.8.0"
URL = ("https://files.pythonhosted.org/packages/cf/7a/"
       "1a9b1405f2eb59515f06c3074750b03e0e96edf7fee0f6dd6df81d9c21d7/hnswlib-0.8.0.tar.gz")
SHA256 = "cb6d037eedebb34a7134e7dc78966441dfd04c9cf5ee93911be911ced951c44c"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    dest = sys.argv[1]
    try:
        with urllib.request.urlopen(URL, timeout=60) as r:
            data = r.read()
    except OSError as e:
        sys.exit(f"fetch_hnswlib: cannot download hnswlib {VERSION} from PyPI: {e}")
    got = hashlib.sha256(data).hexdigest()
    if got != SHA256:
        sys.exit(f"fetch_hnswlib: hnswlib-{VERSION}.tar.gz has SHA-256 {got}, expected {SHA256}")
    out = os.path.join(dest, "hnswlib")
    os.makedirs(out, exist_ok=True)
    n = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for m in tar.getmembers():
            parts = m.name.split("/")
            # hnswlib-0.8.0/hnswlib/NAME.h: the header-only library itself
            if m.isfile() and len(parts) == 3 and parts[1] == "hnswlib" and parts[2].endswith(".h"):
                with open(os.path.join(out, parts[2]), "wb") as f:
                    f.write(tar.extractfile(m).read())
                n += 1
    if not os.path.exists(os.path.join(out, "hnswlib.h")):
        sys.exit(f"fetch_hnswlib: hnswlib-{VERSION}.tar.gz holds no hnswlib/hnswlib.h")
    with open(os.path.join(dest, "VERSION"), "w") as f:
        f.write(VERSION + "\n")
    print(f"fetch_hnswlib: hnswlib {VERSION} headers ({n} files) in {out}")


if __name__ == "__main__":
    main()
