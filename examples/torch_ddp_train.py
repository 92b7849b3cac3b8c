"""A small data-parallel training loop on the "weft" torch.distributed backend.

    torchrun --nproc-per-node 4 examples/torch_ddp_train.py --backend weft
    torchrun --nproc-per-node 4 examples/torch_ddp_train.py --backend gloo   # to compare

Each rank generates its own shard of a synthetic regression problem (a fixed
random MLP's outputs plus noise), trains an MLP under DistributedDataParallel,
and rank 0 prints the loss (averaged over the ranks) and the time per step.
No import of weft_torch is needed: its entry point registers "weft".
"""

import argparse
import time

import torch
import torch.distributed as dist
import torch.nn as nn


def mlp(width, depth):
    layers, d = [], 64
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    layers.append(nn.Linear(d, 8))
    return nn.Sequential(*layers)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="weft")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=64, help="samples per rank and step")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of the timing")
    args = parser.parse_args()

    dist.init_process_group(args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)  # the same initial weights everywhere (DDP also broadcasts them)
    model = mlp(args.width, args.depth)
    teacher = mlp(64, 1)
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
    data = torch.Generator().manual_seed(1000 + rank)
    params = sum(p.numel() for p in model.parameters())
    if rank == 0:
        print(f"{args.backend}: {world} ranks, MLP {args.depth}x{args.width} ({params / 1e6:.1f} M parameters, "
              f"{params * 4 / 2**20:.1f} MiB of gradients a step), batch {args.batch} per rank", flush=True)
    times = []
    for step in range(args.steps):
        x = torch.randn(args.batch, 64, generator=data)
        with torch.no_grad():
            y = teacher(x) + 0.01 * torch.randn(args.batch, 8, generator=data)
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(ddp(x), y)
        loss.backward()  # DDP all-reduces the gradient buckets here
        opt.step()
        elapsed = time.perf_counter() - start
        if step >= args.warmup:
            times.append(elapsed)
        avg = loss.detach().clone()
        dist.all_reduce(avg)
        if rank == 0 and (step % 10 == 0 or step == args.steps - 1):
            print(f"step {step:4d}  loss {avg.item() / world:.6f}  step time {elapsed * 1e3:.2f} ms", flush=True)
    if rank == 0 and times:
        times.sort()
        print(f"{args.backend}: median step time {times[len(times) // 2] * 1e3:.2f} ms over {len(times)} steps "
              f"(after {args.warmup} warm-up steps)", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
