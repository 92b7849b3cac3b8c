"""Training-shaped uses of the "weft" backend, each checked against gloo.

usage: training_check.py ddp NPROCS     DDP: N steps with weft and with gloo
                                        from the same weights and data give
                                        the same weights on every rank, equal
                                        to gloo's bit for bit where the sums
                                        are exact (a linear model on eighths,
                                        2 or 4 ranks), within 1e-5 for an MLP
       training_check.py fsdp NPROCS    flat all_gather_into_tensor +
                                        reduce_scatter_tensor per step, as
                                        FSDP does, against gloo
       training_check.py pipeline NPROCS  stages pass activations forward with
                                        send/recv and gradients back with
                                        batch_isend_irecv
       training_check.py kill NPROCS    the last rank dies mid-training; every
                                        survivor's pending Work fails with
                                        DistBackendError within the timeout
Exit 0 only when every check passed.
"""

import io
import os
import sys
import tempfile
import time
import traceback
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

import weft_torch  # noqa: F401

STEPS = 6


def shared_path(tag):
    """One rendezvous file for the ranks of one run (they share a parent)."""
    return os.path.join(tempfile.gettempdir(), f"weft-torch-{tag}-{os.getppid()}")


def init(rank, n, path, backend, timeout=60):
    dist.init_process_group(backend, init_method=f"file://{path}", rank=rank, world_size=n,
                            timeout=timedelta(seconds=timeout))


def ddp_weights(rank, n, path, backend, exact):
    init(rank, n, path, backend)
    torch.manual_seed(0)
    if exact:
        # A linear model on eighths: products and sums stay exact, so any
        # correct all-reduce gives the same bits (DDP divides the gradients by
        # the world size: exact for 2 and 4 ranks)
        # (float64, three steps: the weights' bits grow by about 12 a step).
        model = nn.Linear(16, 4, bias=False).double()
        with torch.no_grad():
            model.weight.copy_(torch.randint(-8, 8, model.weight.shape).double() / 8)
    else:
        model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=0.001)  # several buckets
    opt = torch.optim.SGD(ddp.parameters(), lr=1.0 / 64 if exact else 0.05)
    g = torch.Generator().manual_seed(100 + rank)
    losses = []
    dtype = torch.float64 if exact else torch.float32
    for _ in range(3 if exact else STEPS):
        x = torch.randint(-8, 8, (8, 16), generator=g).to(dtype) / 8
        y = torch.randint(-8, 8, (8, 4), generator=g).to(dtype) / 8
        opt.zero_grad()
        out = ddp(x)
        loss = ((out - y) * (out - y)).sum() if exact else nn.functional.mse_loss(out, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    weights = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    dist.destroy_process_group()
    return weights, losses


def ddp_worker(rank, n, results):
    out = {}
    for exact in (True, False):
        for backend in ("weft", "gloo"):
            out[(backend, exact)] = ddp_weights(rank, n, shared_path(f"ddp-{backend}-{int(exact)}"), backend, exact)
    put(results, rank, out)


def on_both(mode, rank, n, results, body):
    """body(rank, n) once on weft and once on gloo; both results go back."""
    out = {}
    for backend in ("weft", "gloo"):
        init(rank, n, shared_path(f"{mode}-{backend}"), backend)
        out[backend] = body(rank, n)
        dist.destroy_process_group()
    put(results, rank, out)


def fsdp_steps(rank, n):
    # Integers below 2^24 throughout, so every sum is exact in float32.
    shard = torch.arange(1000, dtype=torch.float32) % 97 + rank  # this rank's shard of the flat parameters
    full = torch.empty(1000 * n)
    for step in range(STEPS):
        dist.all_gather_into_tensor(full, shard)  # unshard
        grad = full * (rank + 1) + step  # a gradient of the full parameters
        gshard = torch.empty(1000)
        dist.reduce_scatter_tensor(gshard, grad, op=dist.ReduceOp.SUM)  # each rank gets its shard's sum
        shard = torch.remainder(shard + gshard, 1024)
    return full.clone(), shard.clone()


def pipeline_steps(rank, n):
    torch.manual_seed(rank)
    w = torch.randint(-4, 4, (32, 32)).float() / 8
    seen = []
    for micro in range(STEPS):
        # forward: stage 0 makes the activation, each stage applies its weight
        act = torch.full((4, 32), float(micro + 1) / 4) if rank == 0 else torch.empty(4, 32)
        if rank > 0:
            dist.recv(act, rank - 1)
        act = act @ w
        if rank < n - 1:
            dist.send(act, rank + 1)
        # backward: gradients flow back, sent and received in batches
        grad = torch.ones(4, 32) / 8 if rank == n - 1 else torch.empty(4, 32)
        if rank < n - 1:
            for req in dist.batch_isend_irecv([dist.P2POp(dist.irecv, grad, rank + 1)]):
                req.wait()
        back = grad @ w.t()
        if rank > 0:
            for req in dist.batch_isend_irecv([dist.P2POp(dist.isend, back, rank - 1)]):
                req.wait()
        seen.append(torch.cat([act.reshape(-1), back.reshape(-1)]))
    return torch.stack(seen)


def fsdp_worker(rank, n, results):
    on_both("fsdp", rank, n, results, fsdp_steps)


def pipeline_worker(rank, n, results):
    on_both("pipeline", rank, n, results, pipeline_steps)


def kill_worker(rank, n, results):
    path = os.environ["WEFT_KILL_PATH"]
    timeout = 10
    try:
        init(rank, n, path, "weft", timeout=timeout)
        model = nn.Linear(64, 64)
        ddp = nn.parallel.DistributedDataParallel(model)
        for step in range(1000):
            if rank == n - 1 and step == 3:
                os._exit(9)  # dies in the middle of training
            x = torch.ones(16, 64)
            start = time.monotonic()
            try:
                ddp(x).sum().backward()
                t = torch.ones(1 << 16)
                dist.all_reduce(t)
            except Exception as e:  # noqa: BLE001
                took = time.monotonic() - start
                results.put((rank, type(e).__name__, str(e), took, step))
                return
        results.put((rank, "none", "training finished without an error", 0.0, -1))
    except Exception:  # noqa: BLE001
        results.put((rank, "setup", traceback.format_exc(), 0.0, -1))


def put(results, rank, out):
    """Through the queue as bytes: a tensor sent by reference dies with its
    process before the parent reads it."""
    buffer = io.BytesIO()
    torch.save(out, buffer)
    results.put((rank, buffer.getvalue()))


def take(results):
    rank, raw = results.get(timeout=600)
    return rank, torch.load(io.BytesIO(raw))


def spawn(target, n, extra_env=None):
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    if extra_env:
        os.environ.update(extra_env)
    procs = [ctx.Process(target=target, args=(r, n, results)) for r in range(n)]
    for p in procs:
        p.start()
    return ctx, procs, results


def main():
    mode, n = sys.argv[1], int(sys.argv[2])
    failures = []
    if mode == "kill":
        path = tempfile.mktemp(prefix="weft-kill-")
        _, procs, results = spawn(kill_worker, n, {"WEFT_KILL_PATH": path})
        got = []
        deadline = time.monotonic() + 120
        while len(got) < n - 1 and time.monotonic() < deadline:
            try:
                got.append(results.get(timeout=5))
            except Exception:  # noqa: BLE001
                pass
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
                failures.append("a survivor hung after the error")
        if len(got) != n - 1:
            failures.append(f"{n - 1 - len(got)} survivors never reported (hung)")
        for rank, kind, text, took, step in got:
            print(f"rank {rank}: step {step}: {kind} after {took:.2f} s: {text[:300]}")
            if kind != "DistBackendError":
                failures.append(f"rank {rank}: {kind}, not DistBackendError")
            if took > 10 + 5:
                failures.append(f"rank {rank}: the error took {took:.1f} s, past the 10 s timeout")
            if "weft" not in text or "rank" not in text:
                failures.append(f"rank {rank}: the message does not name weft and a rank: {text[:200]}")
    else:
        worker = {"ddp": ddp_worker, "fsdp": fsdp_worker, "pipeline": pipeline_worker}[mode]
        _, procs, results = spawn(worker, n)
        got = dict(take(results) for _ in range(n))
        for p in procs:
            p.join(60)
            if p.exitcode != 0:
                failures.append(f"a rank exited with {p.exitcode}")
        if mode == "ddp":
            for exact in (True, False):
                w0 = got[0][("weft", exact)][0]
                for rank in range(n):
                    weft_w, weft_l = got[rank][("weft", exact)]
                    gloo_w, gloo_l = got[rank][("gloo", exact)]
                    if not torch.equal(weft_w, w0):
                        failures.append(f"ddp exact={exact}: rank {rank}'s weights differ from rank 0's")
                    if exact:
                        if not torch.equal(weft_w, gloo_w) or weft_l != gloo_l:
                            failures.append(f"ddp exact: rank {rank}: weft and gloo differ "
                                            f"(max {float((weft_w - gloo_w).abs().max())})")
                    elif not torch.allclose(weft_w, gloo_w, rtol=1e-5, atol=1e-6):
                        failures.append(f"ddp float: rank {rank}: weft and gloo differ beyond 1e-5 "
                                        f"(max {float((weft_w - gloo_w).abs().max())})")
                print(f"ddp exact={exact}: losses weft {[round(x, 5) for x in got[0][('weft', exact)][1]]} "
                      f"gloo {[round(x, 5) for x in got[0][('gloo', exact)][1]]}")
        else:
            for rank in range(n):
                a, b = got[rank]["weft"], got[rank]["gloo"]
                pairs = zip(a, b) if isinstance(a, tuple) else [(a, b)]
                for x, y in pairs:
                    if not torch.equal(x, y):
                        failures.append(f"{mode}: rank {rank}: weft and gloo differ "
                                        f"(max {float((x - y).abs().max())})")
            print(f"{mode}: compared {n} ranks' results with gloo's")
    for f in failures:
        print("FAIL", f)
    print(f"training_check {mode}: " + ("FAILED" if failures else "all passed"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
