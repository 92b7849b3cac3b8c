"""torch.distributed collectives on the "weft" backend against gloo, side by
side in one run: the same processes, the same tensors, the same wheel.

    .venv/bin/python perf/torch_backend_bench.py --nprocs 2 4
    .venv/bin/python perf/torch_backend_bench.py --nprocs 4 --ops all_reduce --max-bytes 16M

For each process count it prints, per operation and size, the time per call
(the slowest rank's mean over the timed iterations, each call waited for) and
the algorithm bandwidth (the bytes of the larger buffer / time) of weft and
gloo, and weft's gain. It also runs weft's own all_reduce_perf at 8 B with the
same number of processes (mpirun), so the plugin's cost per call shows:
torch's call on weft minus weft's C call.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import weft_torch  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPS = ["all_reduce", "all_gather_into_tensor", "reduce_scatter_tensor", "broadcast", "all_to_all_single"]


def parse_bytes(text):
    m = re.fullmatch(r"(\d+)([KMG]?)", text.upper())
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def sizes(lo, hi):
    s = lo
    while s <= hi:
        yield s
        s *= 4 if s < (1 << 20) else 2


def call(op, n, group, small, big, out):
    if op == "all_reduce":
        return lambda: dist.all_reduce(big, group=group)
    if op == "all_gather_into_tensor":
        return lambda: dist.all_gather_into_tensor(big, small, group=group)
    if op == "reduce_scatter_tensor":
        return lambda: dist.reduce_scatter_tensor(small, big, group=group)
    if op == "broadcast":
        return lambda: dist.broadcast(big, src=0, group=group)
    return lambda: dist.all_to_all_single(out, big, group=group)


def worker(rank, n, path, args, results):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    dist.init_process_group("weft", init_method=f"file://{path}", rank=rank, world_size=n,
                            timeout=timedelta(seconds=300))
    groups = {"weft": dist.group.WORLD, "gloo": dist.new_group(backend="gloo")}
    for group in groups.values():  # connections and first-touch out of the timing
        warm = torch.ones(1024)
        for _ in range(200):
            dist.all_reduce(warm, group=group)
    rows = []
    for op in args.ops:
        blocked = op != "all_reduce" and op != "broadcast"  # the larger buffer is n blocks
        for size in sizes(max(args.min_bytes, 4 * n if blocked else 4), args.max_bytes):
            count = size // 4  # float32 elements of the larger buffer
            if blocked:
                count -= count % n
            big = torch.ones(count)
            small = torch.ones(count // n)
            out = torch.ones(count) if op == "all_to_all_single" else None  # allocated once, like the others
            iters = max(3, min(args.iters, int(args.budget_bytes // max(size, 1))))
            row = {"op": op, "bytes": count * 4}
            for name, group in groups.items():
                fn = call(op, n, group, small, big, out)
                for _ in range(max(1, iters // 5)):
                    fn()
                dist.barrier(group=group)
                start = time.perf_counter()
                for _ in range(iters):
                    fn()
                elapsed = torch.tensor([(time.perf_counter() - start) / iters], dtype=torch.float64)
                dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
                row[name] = elapsed.item()
            rows.append(row)
    dist.destroy_process_group()
    if rank == 0:
        results.put(rows)


def weft_c_time_8b(n):
    perf = os.path.join(ROOT, "build", "perf", "all_reduce_perf")
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-x", "WEFT_SOCKET_IFNAME=lo", "-np", str(n), perf,
           "-b", "8", "-e", "8", "-n", "2000", "-w", "200"]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[0] == "8":
            return float(fields[5]) * 1e-6
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nprocs", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--ops", nargs="+", default=OPS, choices=OPS)
    parser.add_argument("--min-bytes", type=parse_bytes, default=8)
    parser.add_argument("--max-bytes", type=parse_bytes, default=256 << 20)
    parser.add_argument("--iters", type=int, default=200, help="timed calls per size at most")
    parser.add_argument("--budget-bytes", type=parse_bytes, default=2 << 30,
                        help="fewer iterations for large sizes: about this many bytes per size")
    args = parser.parse_args()
    print(f"# torch {torch.__version__}, {os.cpu_count()} CPUs; float32; time per call = the slowest rank's mean")
    for n in args.nprocs:
        c8 = weft_c_time_8b(n)
        path = tempfile.mktemp(prefix="weft-torch-bench-")
        ctx = mp.get_context("spawn")
        results = ctx.Queue()
        procs = [ctx.Process(target=worker, args=(r, n, path, args, results)) for r in range(n)]
        for p in procs:
            p.start()
        rows = results.get(timeout=3600)
        for p in procs:
            p.join(120)
        print(f"\n## {n} processes")
        if c8 is not None:
            print(f"# weft all_reduce_perf (C API, mpirun -np {n}) at 8 B: {c8 * 1e6:.2f} us")
        print(f"{'op':<24}{'bytes':>12}{'weft us':>12}{'gloo us':>12}{'weft GB/s':>11}{'gloo GB/s':>11}"
              f"{'weft/gloo':>11}")
        for row in rows:
            w, g = row["weft"], row["gloo"]
            print(f"{row['op']:<24}{row['bytes']:>12}{w * 1e6:>12.2f}{g * 1e6:>12.2f}{row['bytes'] / w / 1e9:>11.3f}"
                  f"{row['bytes'] / g / 1e9:>11.3f}{g / w:>10.2f}x")
            if row["op"] == "all_reduce" and row["bytes"] == 8 and c8 is not None:
                print(f"# plugin cost at 8 B: {(w - c8) * 1e6:.2f} us above weft's C call")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
