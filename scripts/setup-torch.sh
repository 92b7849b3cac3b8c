#!/usr/bin/env bash
# The torch.distributed backend's environment: .venv with torch (pinned, the
# extension's C++ ABI is tied to one torch build) and, once weft is built,
# weft_torch from python/ built against it.
#   scripts/setup-torch.sh venv      creates .venv and installs torch (when missing)
#   scripts/setup-torch.sh plugin    (re)installs weft_torch when its sources or libweft changed
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION=2.15.0
need_kib=$((7 * 1024 * 1024))  # the CUDA wheel installs about 5.4 GB
py=.venv/bin/python

case ${1:?usage: setup-torch.sh venv|plugin} in
  venv)
    if [[ -x $py ]] && $py -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
      exit 0
    fi
    avail=$(df --output=avail -k . | tail -1)
    if (( avail < need_kib )); then
      echo "setup: torch==$TORCH_VERSION needs about 7 GB free for .venv; $(( avail / 1024 )) MB are free here." >&2
      echo "setup: free some space, or set WEFT_SKIP_TORCH=1 to build and test weft without the PyTorch backend." >&2
      exit 1
    fi
    [[ -x $py ]] || /usr/bin/python3 -m venv .venv
    echo "setup: installing torch==$TORCH_VERSION into .venv (a large download)"
    # A slow mirror: a longer timeout than pip's 15 s, and one retry.
    .venv/bin/pip install -q --no-cache-dir --timeout 120 --retries 1 "torch==$TORCH_VERSION" numpy
    ;;
  plugin)
    stamp=.venv/weft_torch.stamp
    sum=$(cat python/setup.py python/pyproject.toml python/weft_torch/*.py python/weft_torch/csrc/* include/weft/weft.h \
              build/src/libweft.so.*.*.* | sha256sum | cut -d' ' -f1)
    if [[ -f $stamp && $(cat "$stamp") == "$sum" ]] && $py -c "import weft_torch" 2>/dev/null; then
      exit 0
    fi
    echo "setup: building weft_torch against torch in .venv"
    rm -rf python/build python/*.egg-info
    MAX_JOBS=$(nproc) .venv/bin/pip install -q --no-build-isolation --no-deps ./python
    rm -rf python/build python/*.egg-info
    echo "$sum" > "$stamp"
    ;;
esac
