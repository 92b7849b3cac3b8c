#!/usr/bin/env bash
# Installs what weft needs from Debian's archive (when missing) and builds it
# into ./build. Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config libhwloc-dev hwloc libxml2-dev libibverbs-dev
          libssl-dev nlohmann-json3-dev libopenmpi-dev openmpi-bin libgloo-dev libgtest-dev libgmock-dev libbenchmark-dev libopenblas-dev iproute2
          python3 python3-venv python3-dev clang libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The PyTorch backend's environment comes first: CMake registers its tests
# when .venv exists. WEFT_SKIP_TORCH=1 leaves it out.
if [[ ${WEFT_SKIP_TORCH:-0} != 1 ]]; then bash scripts/setup-torch.sh venv; fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DWEFT_WERROR=ON ${WEFT_CMAKE_ARGS:-} >/dev/null
cmake --build build -j "$(nproc)"
if [[ ${WEFT_SKIP_TORCH:-0} != 1 ]]; then bash scripts/setup-torch.sh plugin; fi
