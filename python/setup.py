"""Build script of the hnswc Python package.

The extension hnswc._hnswc is self-contained: it compiles the C extension
(python/ext/*.c) together with libhnswc's own sources (src/*.c), so pip needs
nothing prebuilt. Install with

    pip install --no-build-isolation ./python

from the repository root (`make python` does it into build/venv). No -march
flag is used: the distance kernels pick their instruction set at run time.
"""
import glob
import os

import numpy
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def sources():
    ext = sorted(glob.glob(os.path.join(HERE, "ext", "*.c")))
    lib = sorted(glob.glob(os.path.join(ROOT, "src", "*.c")))
    if not lib:
        raise SystemExit("hnswc: libhnswc sources not found in %s/src; build from a checkout "
                         "of the repository" % ROOT)
    # setuptools wants paths relative to setup.py
    return [os.path.relpath(p, HERE) for p in ext + lib]


extension = Extension(
    "hnswc._hnswc",
    sources=sources(),
    include_dirs=[os.path.join(ROOT, "include"), os.path.join(ROOT, "src"),
                  os.path.join(HERE, "ext"), numpy.get_include()],
    define_macros=[("_POSIX_C_SOURCE", "200809L")],
    extra_compile_args=["-std=c11", "-O3", "-fvisibility=hidden", "-pthread",
                        "-Wno-unused-parameter"],
    extra_link_args=["-pthread"],
    libraries=["m"],
)

setup(
    name="hnswc",
    version="0.1.0",
    description="Fast HNSW approximate nearest neighbour search; a drop-in replacement "
                "for hnswlib",
    packages=["hnswc", "hnswc.viz", "hnswc.dask"],
    package_data={"hnswc": ["py.typed", "*.pyi"], "hnswc.viz": ["explorer.html"]},
    ext_modules=[extension],
    python_requires=">=3.9",
    install_requires=["numpy"],
    # hnswc.dask; pinned for the tests in python/requirements-dask.txt
    extras_require={"dask": ["dask[array,distributed]"]},
    zip_safe=False,
)
