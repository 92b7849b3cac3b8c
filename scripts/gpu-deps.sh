#!/usr/bin/env bash
# Run here (a machine with Debian's archive): downloads the Debian packages
# the GPU build needs and the GPU machine lacks (it reaches no registry) into
# .gpu-deps/, which is git-ignored and travels as a carried path. The
# NCCL comparison needs no carried wheel: the GPU machine's image holds
# nvidia-nccl-cu13 already (its libnccl.so.2; check the version there).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu-deps/debs
cd .gpu-deps/debs
apt-get update -qq
apt-get download -qq libhwloc-dev libhwloc15 libxml2-dev libxml2 libicu72 libgtest-dev googletest \
  pkgconf pkgconf-bin libpkgconf3 libltdl7 libudev1 zlib1g-dev liblzma-dev libssl-dev libssl3
cd ../..
du -sh .gpu-deps
