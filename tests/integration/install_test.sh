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
# The installed tools and perf binaries run from any prefix (moved after
# installing, no LD_LIBRARY_PATH); perf binaries live in libexec/weft, where
# nccl-tests' binaries of the same names cannot clash with them.
moved=$(mktemp -d)
trap 'rm -rf "$prefix" "$moved"' EXIT
cp -a "$prefix/." "$moved/"
rm -rf "$prefix/bin" "$prefix/libexec"
for tool in weft-info weft-topo; do
  [[ -x $moved/bin/$tool ]] || { echo "FAIL: bin/$tool not installed"; exit 1; }
done
"$moved/bin/weft-info" >/dev/null
ls "$moved/bin" | grep -q "_perf$" && { echo "FAIL: perf binaries in bin/: $(ls "$moved/bin")"; exit 1; }
[[ -x $moved/libexec/weft/all_reduce_perf ]] || { echo "FAIL: libexec/weft/all_reduce_perf not installed"; exit 1; }
env -u LD_LIBRARY_PATH WEFT_SOCKET_IFNAME=lo "$moved/libexec/weft/all_reduce_perf" -t 2 -b 8 -e 1K -f 8 -n 1 -w 1 >"$moved/perf.log" 2>&1 ||
  { cat "$moved/perf.log"; echo "FAIL: the installed all_reduce_perf did not run"; exit 1; }
grep -q "Out of bounds values : 0 OK" "$moved/perf.log" || { cat "$moved/perf.log"; echo "FAIL: wrong results"; exit 1; }
echo "installed: find_package, pkg-config, tools and perf binaries from a moved prefix"
