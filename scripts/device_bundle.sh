#!/usr/bin/env bash
# Builds a release `baton` with the Swift stdlib linked in and packs it, with the OpenBLAS
# libraries it loads, into DIR/bundle.tar.xz for the GPU machine (which has no Swift toolchain).
#   scripts/device_bundle.sh DIR        (DIR inside the checkout, ignored by .git/info/exclude)
# On the GPU machine:  cd DIR && tar xJf bundle.tar.xz && export LD_LIBRARY_PATH=$PWD/lib && ./baton ...
set -euo pipefail
out=${1:?usage: scripts/device_bundle.sh DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
swift build -c release --static-swift-stdlib --scratch-path .build-release --product baton
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib"
cp .build-release/release/baton "$stage/baton"
strip "$stage/baton"
for lib in libopenblas.so.0 libgfortran.so.5 libquadmath.so.0; do
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && !found { print $NF; found = 1 }')  # no early exit: pipefail would see SIGPIPE
    [ -n "$path" ] && cp -L "$path" "$stage/lib/"
done
mkdir -p "$out"
tar cJf "$out/bundle.tar.xz" -C "$stage" .
ls -l "$out/bundle.tar.xz"
