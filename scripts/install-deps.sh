#!/bin/sh
# Installs the Debian packages that building, testing and the demo need,
# only those that are missing. Run as root (CI does); otherwise it uses sudo
# if it can, or says what to install.
set -eu
PKGS="build-essential clang libclang-rt-14-dev pkg-config cmake libcmocka-dev zlib1g-dev libhdf5-dev
python3 python3-dev python3-venv python3-pip python3-numpy python3-pytest
python3-setuptools python3-wheel python3-hypothesis python3-matplotlib python3-pil python3-h5py python3-hnswlib python3-faiss
libhnswlib-dev dataset-fashion-mnist libopenblas0-pthread chromium libc6-dev-arm64-cross"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js and npm drive the browser tests (tests/browser: playwright-core from
# npm, pointed at Debian's chromium). Checked by command, not by package: a
# machine may have them from another source (a nodejs package that bundles
# npm conflicts with Debian's npm package).
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
echo "install-deps: installing$missing"
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: missing packages:$missing (run as root: apt-get install$missing)" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null
