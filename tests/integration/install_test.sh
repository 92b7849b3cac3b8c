#!/usr/bin/env bash
# Installs weft into a scratch prefix and builds a consumer against it both
# ways a user would: find_package(weft) and pkg-config.
set -euo pipefail
build=$1; source=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
cmake -S "$source/tests/install_consumer" -B "$prefix/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/consumer" >/dev/null
LD_LIBRARY_PATH="$prefix/lib:$prefix/lib64:${LD_LIBRARY_PATH:-}" "$prefix/consumer/consumer"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib64/pkgconfig"
cc "$source/tests/install_consumer/consumer.c" $(pkg-config --cflags --libs weft) -o "$prefix/pc_consumer"
LD_LIBRARY_PATH="$prefix/lib:$prefix/lib64:${LD_LIBRARY_PATH:-}" "$prefix/pc_consumer"
