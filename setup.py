"""Build script of the hnswc Python package (metadata: pyproject.toml).

The extension hnswc._hnswc is self-contained: it compiles the binding
(python/ext/*.c) together with libhnswc's own sources (src/*.c, with
include/hnswc.h), so nothing has to be built or installed first. The sdist
carries all of them (MANIFEST.in), so both of these work:

    pip install .                 # from a checkout, or from the sdist;
                                  # pip fetches setuptools and NumPy
    pip install --no-build-isolation --no-index .
                                  # offline, with the NumPy and setuptools
                                  # already installed (make python does this)

Building needs a C11 compiler (gcc or clang), Python's headers and NumPy's
headers; a missing one stops the build with a message saying what to
install, instead of a compiler or import traceback. No -march flag is used:
the distance kernels pick their instruction set at run time, so a wheel
runs on any CPU of its architecture.
"""
import glob
import os
import re
import shutil
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def version():
    """The library's version, from its one public header."""
    with open(os.path.join(HERE, "include", "hnswc.h"), encoding="utf-8") as f:
        m = re.search(r'^#define HNSWC_VERSION "([^"]+)"', f.read(), re.M)
    if not m:
        raise SystemExit("hnswc: HNSWC_VERSION not found in include/hnswc.h")
    return m.group(1)


def sources():
    """The binding and the library, as paths relative to this file (setuptools
    wants them so). Both sets must be there: an sdist missing src/ would
    otherwise build an extension that fails to import."""
    def c_files(*folder):
        return sorted(os.path.relpath(p, HERE)
                      for p in glob.glob(os.path.join(HERE, *folder, "*.c")))
    ext, lib = c_files("python", "ext"), c_files("src")
    if not ext or not lib:
        raise SystemExit("hnswc: the C sources (src/*.c and python/ext/*.c) are missing from %s; "
                         "build from a checkout of the repository or from hnswc's sdist" % HERE)
    return ext + lib


def fail(what, advice):
    raise SystemExit("\nhnswc: cannot build the C extension: %s.\n%s\n" % (what, advice))


class BuildExt(build_ext):
    """build_ext that checks its tools first and adds NumPy's headers late,
    so that making an sdist or the metadata needs neither a compiler nor
    NumPy."""

    def build_extensions(self):
        self.check_compiler()
        self.check_python_headers()
        include, numpy_version = self.numpy_include()
        for ext in self.extensions:
            ext.include_dirs.append(include)
        # Objects are reused when newer than their sources, but those built
        # against one NumPy's headers fail to import under another (make
        # python uses Debian's NumPy 1.x, pip's isolated builds NumPy 2):
        # one folder of objects per Python and NumPy version.
        # The linked module, though, has one place (build_lib, which the
        # wheel is assembled from), and setuptools relinks it only when a
        # source is newer: after a build against the other NumPy it would
        # ship that one (bench-venv then failed with "_ARRAY_API not found").
        # So the NumPy version of the last link is kept beside the object
        # folders, and a different one forces the build.
        stamp = os.path.join(self.build_temp, "numpy-of-last-link")
        try:
            with open(stamp) as f:
                last = f.read().strip()
        except OSError:
            last = None
        if last != numpy_version:
            self.force = True
        self.build_temp = os.path.join(self.build_temp, "numpy-" + numpy_version)
        super().build_extensions()
        os.makedirs(os.path.dirname(stamp), exist_ok=True)
        with open(stamp, "w") as f:
            f.write(numpy_version + "\n")

    def check_compiler(self):
        # Unix compilers name their executable in compiler_so (CC, if set,
        # is already applied). Others (MSVC) are left to setuptools: the
        # library needs POSIX threads and is not built on Windows.
        cmd = getattr(self.compiler, "compiler_so", None)
        if cmd and shutil.which(cmd[0]) is None:
            fail("no C compiler found (looked for '%s')" % cmd[0],
                 "Install gcc or clang (Debian/Ubuntu: apt-get install gcc python3-dev; "
                 "Fedora: dnf install gcc python3-devel; macOS: xcode-select --install), "
                 "or set CC to a C11 compiler.")

    def check_python_headers(self):
        inc = sysconfig.get_paths().get("include")
        if inc and not os.path.exists(os.path.join(inc, "Python.h")):
            fail("Python's headers are missing (no %s)" % os.path.join(inc, "Python.h"),
                 "Install them (Debian/Ubuntu: apt-get install python3-dev; "
                 "Fedora: dnf install python3-devel).")

    @staticmethod
    def numpy_include():
        try:
            import numpy
        except ImportError:
            fail("NumPy is not installed in the Python that builds it (%s)" % sys.executable,
                 "pip installs it by itself unless --no-build-isolation is given; with that "
                 "option, install NumPy first (pip install numpy) or drop the option.")
        return numpy.get_include(), numpy.__version__


extension = Extension(
    "hnswc._hnswc",
    sources=sources(),
    include_dirs=["include", "src", os.path.join("python", "ext")],
    define_macros=[("_POSIX_C_SOURCE", "200809L")],
    extra_compile_args=["-std=c11", "-O3", "-fvisibility=hidden", "-pthread",
                        "-Wno-unused-parameter"],
    extra_link_args=["-pthread"],
    libraries=["m"],
)

setup(
    version=version(),
    packages=["hnswc", "hnswc.viz", "hnswc.dask"],
    package_dir={"": "python"},
    package_data={"hnswc": ["py.typed", "*.pyi"], "hnswc.viz": ["explorer.html"]},
    ext_modules=[extension],
    cmdclass={"build_ext": BuildExt},
    # setuptools' scratch goes under the Makefile's build folder, not beside
    # it; the C files compile on two processes (a build on a shared machine
    # should not take every core)
    options={"build": {"build_base": os.path.join("build", "python")},
             "build_ext": {"parallel": min(2, os.cpu_count() or 1)}},
    zip_safe=False,
)
