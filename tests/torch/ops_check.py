"""Every operation of the "weft" torch.distributed backend, on every dtype,
checked element by element against what gloo computes from the same inputs
(in the same run, the same wheel) and against the result worked out from the
inputs themselves (every rank's input is a function of its rank, so each
rank knows them all). Inputs are small integers, so every sum, product, min
and max is exact in every dtype and the comparisons are bit for bit.

usage: ops_check.py NPROCS    (exit 0 only when every check passed)
"""

import os
import sys
import tempfile
import traceback
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import weft_torch  # noqa: F401

REDUCE_DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.uint8, torch.int32,
                 torch.int64]
MOVE_DTYPES = REDUCE_DTYPES + [torch.float8_e4m3fn, torch.float8_e5m2, torch.bool, torch.complex64]
COUNT = 37  # not a multiple of anything weft chunks by


def data(rank, count, dtype, prod=False):
    """Rank's input: 1..8 (1..2 for products, whose results must stay exact)."""
    base = torch.arange(count, dtype=torch.int64)
    values = (base + rank) % 2 + 1 if prod else (base * 3 + rank) % 7 + 1
    if dtype == torch.bool:
        return values % 2 == 0
    if dtype == torch.complex64:
        return torch.complex(values.float(), -values.float())
    return values.to(dtype)


def reduce_expected(inputs, op):
    acc = inputs[0].to(torch.float64)
    for t in inputs[1:]:
        x = t.to(torch.float64)
        if op == "sum":
            acc = acc + x
        elif op == "prod":
            acc = acc * x
        elif op == "min":
            acc = torch.minimum(acc, x)
        else:
            acc = torch.maximum(acc, x)
    return acc.to(inputs[0].dtype)


class Checker:
    def __init__(self, rank, n):
        self.rank, self.n, self.failures, self.checks = rank, n, [], 0

    def same(self, what, got, want):
        self.checks += 1
        if got.dtype != want.dtype or got.shape != want.shape:
            self.failures.append(f"{what}: got {got.dtype}{list(got.shape)}, want {want.dtype}{list(want.shape)}")
            return
        a, b = got, want
        if a.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
            a, b = a.view(torch.uint8), b.view(torch.uint8)
        if not torch.equal(a, b):
            bad = (a != b).nonzero()
            first = bad[0].tolist() if len(bad) else "?"
            self.failures.append(f"{what}: {len(bad)} elements differ, first at {first}: got {got.flatten()[:8]} "
                                 f"want {want.flatten()[:8]}")

    def raises(self, what, fn, words):
        self.checks += 1
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            if words not in str(e):
                self.failures.append(f"{what}: raised without '{words}': {e}")
            return
        self.failures.append(f"{what}: did not raise")


def gloo_ran(fn):
    """False where gloo does not support the call (dtype or op): the
    comparison with gloo is then skipped, the one with the worked-out result
    stays."""
    try:
        fn()
        return True
    except (RuntimeError, ValueError, TypeError):
        return False


def run_reductions(c, gloo, group=None, granks=None):
    rank, n = c.rank, c.n
    me = dist.get_rank(group) if group is not None else rank
    members = granks if granks is not None else list(range(n))
    m = len(members)
    for dtype in REDUCE_DTYPES:
        for op_name, op in (("sum", dist.ReduceOp.SUM), ("prod", dist.ReduceOp.PRODUCT), ("min", dist.ReduceOp.MIN),
                            ("max", dist.ReduceOp.MAX)):
            inputs = [data(r, COUNT, dtype, prod=op_name == "prod") for r in members]
            want = reduce_expected(inputs, op_name)
            t = inputs[me].clone()
            dist.all_reduce(t, op=op, group=group)
            c.same(f"all_reduce {op_name} {dtype} (group {members})", t, want)
            if group is None:
                # reduce to the last rank
                t = inputs[me].clone()
                dist.reduce(t, dst=n - 1, op=op)
                if rank == n - 1:
                    c.same(f"reduce {op_name} {dtype}", t, want)
                # reduce_scatter_tensor: block r of the sum goes to rank r
                big = [data(r, COUNT * n, dtype, prod=op_name == "prod") for r in range(n)]
                wantbig = reduce_expected(big, op_name)
                out = torch.empty(COUNT, dtype=dtype)
                dist.reduce_scatter_tensor(out, big[rank].clone(), op=op)
                c.same(f"reduce_scatter_tensor {op_name} {dtype}", out, wantbig[rank * COUNT:(rank + 1) * COUNT])
                out2 = torch.empty(COUNT, dtype=dtype)
                dist.reduce_scatter(out2, [b.clone() for b in big[rank].chunk(n)], op=op)
                c.same(f"reduce_scatter {op_name} {dtype}", out2, wantbig[rank * COUNT:(rank + 1) * COUNT])
        if dtype.is_floating_point and group is None:
            inputs = [data(r, COUNT, dtype) for r in range(n)]
            t = inputs[rank].clone()
            dist.all_reduce(t, op=dist.ReduceOp.AVG)
            want = (reduce_expected(inputs, "sum").to(torch.float64) / n).to(dtype)
            if n & (n - 1) == 0:
                c.same(f"all_reduce avg {dtype}", t, want)
            else:
                c.checks += 1
                if not torch.allclose(t.double(), want.double(), rtol=1e-2 if dtype in (torch.float16, torch.bfloat16)
                                      else 1e-6):
                    c.failures.append(f"all_reduce avg {dtype}: {t[:5]} vs {want[:5]}")
            t = inputs[rank].clone()
            dist.all_reduce(t, op=dist._make_nccl_premul_sum(2.0))
            c.same(f"all_reduce premul_sum(2) {dtype}", t, (reduce_expected(inputs, "sum").double() * 2).to(dtype))


def run_gloo_comparisons(c, gloo):
    """The same calls through gloo: weft's results equal gloo's."""
    rank, n = c.rank, c.n
    for dtype in (torch.float32, torch.float64, torch.int32, torch.int64, torch.uint8, torch.int8, torch.float16,
                  torch.bfloat16):
        for op in (dist.ReduceOp.SUM, dist.ReduceOp.MIN, dist.ReduceOp.MAX, dist.ReduceOp.PRODUCT):
            x = data(rank, COUNT, dtype, prod=op == dist.ReduceOp.PRODUCT)
            a, b = x.clone(), x.clone()
            dist.all_reduce(a, op=op)
            if not gloo_ran(lambda: dist.all_reduce(b, op=op, group=gloo)):
                continue
            c.same(f"all_reduce {op} {dtype} == gloo", a, b)
        x = data(rank, COUNT, dtype)
        a = [torch.empty_like(x) for _ in range(n)]
        b = [torch.empty_like(x) for _ in range(n)]
        dist.all_gather(a, x)
        dist.all_gather(b, x, group=gloo)
        for i in range(n):
            c.same(f"all_gather {dtype}[{i}] == gloo", a[i], b[i])
        a, b = x.clone(), x.clone()
        dist.broadcast(a, src=n - 1)
        dist.broadcast(b, src=n - 1, group=gloo)
        c.same(f"broadcast {dtype} == gloo", a, b)
        big = data(rank, COUNT * n, dtype)
        a, b = torch.empty_like(big), torch.empty_like(big)
        dist.all_to_all_single(a, big)
        if gloo_ran(lambda: dist.all_to_all_single(b, big, group=gloo)):
            c.same(f"all_to_all_single {dtype} == gloo", a, b)
        a, b = torch.empty(COUNT, dtype=dtype), torch.empty(COUNT, dtype=dtype)
        dist.reduce_scatter_tensor(a, big.clone())
        if gloo_ran(lambda: dist.reduce_scatter_tensor(b, big.clone(), group=gloo)):
            c.same(f"reduce_scatter_tensor {dtype} == gloo", a, b)


def run_movement(c):
    rank, n = c.rank, c.n
    for dtype in MOVE_DTYPES:
        inputs = [data(r, COUNT, dtype) for r in range(n)]
        x = inputs[rank]
        for root in range(n):
            t = x.clone()
            dist.broadcast(t, src=root)
            c.same(f"broadcast root {root} {dtype}", t, inputs[root])
        outs = [torch.empty_like(x) for _ in range(n)]
        dist.all_gather(outs, x)
        for i in range(n):
            c.same(f"all_gather {dtype}[{i}]", outs[i], inputs[i])
        flat = torch.empty(COUNT * n, dtype=dtype)
        dist.all_gather_into_tensor(flat, x)
        c.same(f"all_gather_into_tensor {dtype}", flat, torch.cat(inputs))
        # all_to_all_single, equal blocks: block j of rank i lands as block i on rank j
        bigs = [data(r, COUNT * n, dtype) for r in range(n)]
        out = torch.empty_like(bigs[rank])
        dist.all_to_all_single(out, bigs[rank])
        want = torch.cat([bigs[i][rank * COUNT:(rank + 1) * COUNT] for i in range(n)])
        c.same(f"all_to_all_single {dtype}", out, want)
        # uneven: rank i sends i + j + 1 rows of 3 to rank j
        rows = lambda i, j: i + j + 1  # noqa: E731
        src = [data(i, 3 * sum(rows(i, j) for j in range(n)), dtype).reshape(-1, 3) for i in range(n)]
        insplit = [rows(rank, j) for j in range(n)]
        outsplit = [rows(i, rank) for i in range(n)]
        out = torch.empty(sum(outsplit), 3, dtype=dtype)
        dist.all_to_all_single(out, src[rank], output_split_sizes=outsplit, input_split_sizes=insplit)
        want = torch.cat([src[i][sum(rows(i, j) for j in range(rank)):][:rows(i, rank)] for i in range(n)])
        c.same(f"all_to_all_single uneven {dtype}", out, want)
        # all_to_all lists of different lengths
        ins = [data(rank * n + j, j + rank + 1, dtype) for j in range(n)]
        outs = [torch.empty(rank + i + 1, dtype=dtype) for i in range(n)]
        dist.all_to_all(outs, ins)
        for i in range(n):
            c.same(f"all_to_all {dtype} from {i}", outs[i], data(i * n + rank, rank + i + 1, dtype))
        # gather / scatter at the last rank
        root = n - 1
        outs = [torch.empty_like(x) for _ in range(n)] if rank == root else None
        dist.gather(x, gather_list=outs, dst=root)
        if rank == root:
            for i in range(n):
                c.same(f"gather {dtype}[{i}]", outs[i], inputs[i])
        out = torch.empty_like(x)
        dist.scatter(out, scatter_list=[inputs[i] for i in range(n)] if rank == root else None, src=root)
        c.same(f"scatter {dtype}", out, inputs[rank])
        # send/recv around the ring
        got = torch.empty_like(x)
        if rank % 2 == 0:
            dist.send(x, (rank + 1) % n)
            dist.recv(got, (rank - 1) % n)
        else:
            dist.recv(got, (rank - 1) % n)
            dist.send(x, (rank + 1) % n)
        c.same(f"send/recv {dtype}", got, inputs[(rank - 1) % n])


def run_shapes_and_async(c):
    rank, n = c.rank, c.n
    # Non-contiguous tensors: written back into the strided view.
    base = torch.zeros(COUNT, 2)
    view = base[:, 1]
    view.copy_(data(rank, COUNT, torch.float32))
    dist.all_reduce(view)
    c.same("all_reduce non-contiguous", view, reduce_expected([data(r, COUNT, torch.float32) for r in range(n)], "sum"))
    c.same("all_reduce non-contiguous leaves the rest", base[:, 0], torch.zeros(COUNT))
    outs = [torch.zeros(COUNT, 3)[:, 0] for _ in range(n)]
    dist.all_gather(outs, data(rank, COUNT * 2, torch.float32)[::2])
    for i in range(n):
        c.same(f"all_gather non-contiguous [{i}]", outs[i], data(i, COUNT * 2, torch.float32)[::2])
    mat = data(rank, 6 * n * 4, torch.float32).reshape(6 * n, 4).t()  # transposed input
    out = torch.empty(4, 6 * n * n).t()  # transposed output
    dist.all_gather_into_tensor(out, mat.t())
    c.same("all_gather_into_tensor non-contiguous output", out.contiguous(),
           torch.cat([data(r, 6 * n * 4, torch.float32).reshape(6 * n, 4) for r in range(n)]))
    # Async: the Work, its future, wait with a timeout.
    x = torch.full((1 << 20,), float(rank + 1))
    work = dist.all_reduce(x, async_op=True)
    fut = work.get_future()
    done = fut.wait()
    c.same("future of all_reduce", done[0], torch.full((1 << 20,), float(n * (n + 1) // 2)))
    c.checks += 1
    if not (work.is_completed() and work.is_success()):
        c.failures.append("all_reduce Work not completed after its future")
    y = torch.ones(1000)
    w = dist.all_reduce(y, async_op=True)
    w.wait(timeout=timedelta(seconds=30))
    c.same("wait(timeout)", y, torch.full((1000,), float(n)))
    # Coalesced: batch_isend_irecv, and the coalescing manager's fast paths.
    send = data(rank, COUNT, torch.int32)
    recv = torch.empty(COUNT, dtype=torch.int32)
    ops = [dist.P2POp(dist.isend, send, (rank + 1) % n), dist.P2POp(dist.irecv, recv, (rank - 1) % n)]
    for req in dist.batch_isend_irecv(ops):
        req.wait()
    c.same("batch_isend_irecv", recv, data((rank - 1) % n, COUNT, torch.int32))
    ts = [data(rank, k + 1, torch.float64) for k in range(5)]
    with dist._coalescing_manager(async_ops=True) as cm:
        for t in ts:
            dist.all_reduce(t)
    cm.wait()
    for k, t in enumerate(ts):
        c.same(f"coalesced all_reduce [{k}]", t, reduce_expected([data(r, k + 1, torch.float64) for r in range(n)],
                                                                "sum"))
    outs = [torch.empty(n * (k + 1)) for k in range(3)]
    with dist._coalescing_manager(async_ops=True) as cm:
        for k in range(3):
            dist.all_gather_into_tensor(outs[k], data(rank, k + 1, torch.float32))
    cm.wait()
    for k in range(3):
        c.same(f"coalesced all_gather_into_tensor [{k}]", outs[k],
               torch.cat([data(r, k + 1, torch.float32) for r in range(n)]))
    outs = [torch.empty(k + 1) for k in range(3)]
    with dist._coalescing_manager(async_ops=True) as cm:
        for k in range(3):
            dist.reduce_scatter_tensor(outs[k], data(rank, n * (k + 1), torch.float32))
    cm.wait()
    for k in range(3):
        want = reduce_expected([data(r, n * (k + 1), torch.float32) for r in range(n)], "sum")
        c.same(f"coalesced reduce_scatter_tensor [{k}]", outs[k], want[rank * (k + 1):(rank + 1) * (k + 1)])
    dist.barrier()


def run_errors(c):
    rank, n = c.rank, c.n
    x = torch.ones(8, dtype=torch.int32)
    c.raises("BAND", lambda: dist.all_reduce(x, op=dist.ReduceOp.BAND), "not supported by weft")
    c.raises("BXOR", lambda: dist.all_reduce(x, op=dist.ReduceOp.BXOR), "not supported by weft")
    c.raises("wrong output size", lambda: dist.all_gather_into_tensor(torch.empty(n * 8 + 1, dtype=torch.int32), x),
             "elements; expected")
    # A tensor on a device weft does not serve (no GPU here: a meta tensor,
    # handed to the backend itself, which is where a CUDA tensor would go).
    backend = dist.group.WORLD._get_backend(torch.device("cpu"))
    c.raises("meta tensor", lambda: backend.allreduce([torch.ones(4, device="meta")]), "CPU tensors only")
    c.raises("bad splits", lambda: dist.all_to_all_single(torch.empty(n), torch.ones(n), input_split_sizes=[n + 1] +
                                                          [0] * (n - 1)), "split sizes add up to")
    # The group is still usable.
    y = torch.full((16,), float(rank))
    dist.all_reduce(y)
    c.same("all_reduce after refused calls", y, torch.full((16,), float(n * (n - 1) // 2)))


def worker(rank, n, path, results):
    c = Checker(rank, n)
    try:
        dist.init_process_group("weft", init_method=f"file://{path}", rank=rank, world_size=n,
                                timeout=timedelta(seconds=60))
        c.same("backend name", torch.tensor([dist.get_backend() == "weft"]), torch.tensor([True]))
        gloo = dist.new_group(backend="gloo")
        run_reductions(c, gloo)
        run_gloo_comparisons(c, gloo)
        run_movement(c)
        run_shapes_and_async(c)
        run_errors(c)
        # A sub-group of all ranks but the first, and one made by split_group.
        members = list(range(1, n)) if n > 2 else [0, 1]
        sub = dist.new_group(ranks=members, backend="weft")
        if rank in members:
            run_reductions(c, None, group=sub, granks=members)
        halves = [list(range(0, n, 2)), list(range(1, n, 2))]
        split = dist.split_group(split_ranks=halves)
        mine = halves[rank % 2]
        t = torch.full((9,), float(rank + 1))
        dist.all_reduce(t, group=split)
        c.same("split_group all_reduce", t, torch.full((9,), float(sum(r + 1 for r in mine))))
        dist.barrier()
        dist.destroy_process_group()
    except Exception:  # noqa: BLE001
        c.failures.append("exception: " + traceback.format_exc())
    results.put((rank, c.checks, c.failures))


def main():
    n = int(sys.argv[1])
    path = tempfile.mktemp(prefix="weft-torch-ops-")
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, n, path, results)) for r in range(n)]
    for p in procs:
        p.start()
    got = {}
    for _ in range(n):
        rank, checks, failures = results.get(timeout=600)
        got[rank] = (checks, failures)
    for p in procs:
        p.join(60)
    ok = all(not f for _, f in got.values()) and all(p.exitcode == 0 for p in procs)
    for rank in sorted(got):
        checks, failures = got[rank]
        print(f"rank {rank}: {checks} checks, {len(failures)} failed")
        for f in failures[:20]:
            print("  FAIL", f)
    if os.path.exists(path):
        os.unlink(path)
    print("ops_check: all passed" if ok else "ops_check: FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
