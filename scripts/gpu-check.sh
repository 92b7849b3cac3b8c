#!/usr/bin/env bash
# On the GPU machine, in one call: unpack the carried Debian packages
# (.gpu-deps, from scripts/gpu-deps.sh) into a prefix, build weft with its
# CUDA parts, run the GPU tests and the GPU benchmarks, and print the figures.
#   device run: carry [".gpu-deps"], command "bash scripts/gpu-check.sh"
# Writes the logs to $OUT when set.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/weft-gpu-out}
mkdir -p "$out"
prefix=/tmp/weft-deps
if [ -d .gpu-deps/debs ]; then
  mkdir -p $prefix
  for deb in .gpu-deps/debs/*.deb; do dpkg -x "$deb" $prefix; done
  # Only the carried packages: their .pc files, rooted at the prefix.
  export PKG_CONFIG_LIBDIR=$prefix/usr/lib/x86_64-linux-gnu/pkgconfig:$prefix/usr/share/pkgconfig
  export PKG_CONFIG_SYSROOT_DIR=$prefix
  export PATH=$prefix/usr/bin:$PATH
  export LD_LIBRARY_PATH=$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  extra=(-DCMAKE_PREFIX_PATH="$prefix/usr")
else
  extra=()
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$out/gpu.txt"
cmake -S . -B build-gpu -G Ninja -DWEFT_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 "${extra[@]}" \
  >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
ninja -C build-gpu weft gpu_kernels_test device_gpu_test device_test gpu_bandwidth gpu_all_reduce_perf config_test \
  topology_test weft-topo all_reduce_perf weft-info registered_buffers \
  >"$out/build.log" 2>&1 || { grep -m20 -B2 -A8 "error" "$out/build.log"; exit 1; }
status=0
build-gpu/tests/gpu_kernels_test 2>&1 | tee "$out/gpu_kernels_test.log" | tail -5 || status=1
build-gpu/tests/config_test 2>&1 | tee "$out/config_test.log" | tail -3 || status=1
# The device executor's first GPU runs: the collective cases on 2-3 ranks
# sharing the GPU, then the same interpreter on the emulated device.
timeout 400 build-gpu/tests/device_gpu_test 2>&1 | tee "$out/device_gpu_test.log" | tail -8 || status=1
WEFT_DEVICE=emulated timeout 300 build-gpu/tests/device_test --gtest_filter='DeviceElements.*:EmulatedDevice.*' 2>&1 |
  tee "$out/device_test.log" | tail -3 || status=1
build-gpu/tests/topology_test 2>&1 | tail -3 || status=1
build-gpu/src/weft-topo 2>&1 | tee "$out/weft-topo.txt"
build-gpu/perf/gpu_bandwidth -b $((1 << 30)) -n 20 2>&1 | tee "$out/gpu_bandwidth.txt"
# B (device-to-device copy, bytes read + written per second) and weft's
# all-reduce on 2 ranks sharing the GPU in the same call: target algbw >= 0.7 B/4 at 1 GiB.
timeout 120 build-gpu/perf/gpu_all_reduce_perf -t 2 -b 8 -e $((1 << 30)) -f 8 -n 20 -w 5 2>&1 |
  tee "$out/gpu_all_reduce_float.txt" || status=1
timeout 120 build-gpu/perf/gpu_all_reduce_perf -t 2 -b $((1 << 30)) -e $((1 << 30)) -n 20 -w 5 -d bfloat16 2>&1 |
  tee "$out/gpu_all_reduce_bf16.txt" || status=1
# weft against NCCL on the same buffers, 2 ranks sharing the GPU: the nvidia-nccl-cu13 wheel's
# library where there is one (2.30 or newer takes two ranks on one GPU), else the toolkit's.
nccl=$(ls .venv/lib/python3*/site-packages/nvidia/nccl/lib/libnccl.so.2 /usr/local/cuda*/lib*/libnccl.so.2 \
  /usr/lib/x86_64-linux-gnu/libnccl.so.2 2>/dev/null | head -1)
if [ -n "$nccl" ]; then
  timeout 300 build-gpu/perf/gpu_all_reduce_perf -t 2 -b 8 -e $((1 << 30)) -f 8 -n 20 -w 5 -N "$nccl" 2>&1 |
    tee "$out/nccl_side_by_side.txt" || status=1
else
  echo "no libnccl.so.2 found: NCCL side by side not run" | tee "$out/nccl_side_by_side.txt"
fi
# The nccl-tests-style binary on GPU buffers (CUDA managed memory), 2 ranks sharing the GPU.
timeout 180 build-gpu/perf/all_reduce_perf -t 2 -g 1 -b 8 -e 256M -f 8 -n 20 -w 5 2>&1 |
  tee "$out/all_reduce_perf_gpu.txt" | tail -14 || status=1
# Two processes on the GPU: FIFOs in device memory through CUDA IPC (the same GPU), then
# staged through host memory both map (WEFT_P2P_DISABLE=1), every size checked.
for p2p in 0 1; do
  WEFT_P2P_DISABLE=$p2p WEFT_ALLOW_SHARED_GPU=1 WEFT_DEBUG=INFO WEFT_DEBUG_SUBSYS=INIT timeout 180 \
    tests/integration/env_launch.sh build-gpu/perf/all_reduce_perf 2 -g 1 -b 8 -e 64M -f 8 -n 20 -w 5 2>&1 |
    tee "$out/all_reduce_perf_gpu_processes_p2p_disable_$p2p.txt" | grep -E "FIFOs in|Out of bounds" || status=1
done
# Two processes reading each other's registered device buffers over CUDA IPC (weftMemAlloc +
# weftCommRegister: cuMemGetAddressRange, cudaIpcGetMemHandle), every result checked.
WEFT_DEBUG=INFO WEFT_DEBUG_SUBSYS=INIT timeout 120 tests/integration/env_launch.sh build-gpu/tests/registered_buffers 2 \
  2>&1 | tee "$out/registered_buffers_gpu.txt" | grep -E "mapped rank|every result|wrong|rank 0:" || status=1
# Two "nodes" over loopback on the one GPU: the kernel's slots through the net bridge.
WEFT_ALLOW_SHARED_GPU=1 WEFT_DEBUG=INFO WEFT_DEBUG_SUBSYS=INIT timeout 180 \
  tests/integration/env_launch.sh --separate-nodes build-gpu/perf/all_reduce_perf 2 -g 1 -b 8 -e 64M -f 8 -n 20 -w 5 \
  2>&1 | tee "$out/all_reduce_perf_gpu_two_nodes.txt" | grep -E "net bridge|Out of bounds" || status=1
# The protocol the tuner chooses: the device's constants measured here, the decision table they give, and
# the all-reduce sweep with the shipped defaults, the measured constants and each protocol forced, side
# by side (the chosen protocol should be within 10% of the better forced one at every size).
timeout 120 build-gpu/src/weft-info --calibrate --device cuda --out "$out/device.tune" 2>&1 | tail -3 || status=1
cat "$out/device.tune" 2>/dev/null
build-gpu/src/weft-info --tune --device cuda --nranks 2 --collective allreduce >"$out/tune_defaults.txt" 2>&1
WEFT_DEVICE_TUNE_FILE="$out/device.tune" build-gpu/src/weft-info --tune --device cuda --nranks 2 \
  --collective allreduce >"$out/tune_measured.txt" 2>&1
for run in defaults measured ll simple; do
  case $run in
    defaults) env=() ;;
    measured) env=(WEFT_DEVICE_TUNE_FILE="$out/device.tune") ;;
    *) env=(WEFT_DEVICE_PROTOCOL=$run) ;;
  esac
  env "${env[@]}" timeout 120 build-gpu/perf/all_reduce_perf -t 2 -g 1 -b 8 -e 256M -f 4 -n 20 -w 5 2>&1 |
    tee "$out/protocol_$run.txt" | tail -3 || status=1
done
build-gpu/perf/all_reduce_perf -t 2 -b 8 -e 64M -f 8 -n 20 -w 5 2>&1 | tee "$out/host_all_reduce.txt" | tail -12
exit $status
