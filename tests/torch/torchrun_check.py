"""Run under torchrun: init_process_group("weft") with no import of
weft_torch (the package's torch.distributed.backends entry point registers
it), then an all-reduce whose result is checked. Exit 0 only when it holds."""

import sys

import torch
import torch.distributed as dist

assert "weft_torch" not in sys.modules, "weft_torch was imported before init_process_group"
dist.init_process_group("weft")
rank, n = dist.get_rank(), dist.get_world_size()
t = torch.arange(1000, dtype=torch.float32) + rank
dist.all_reduce(t)
want = torch.arange(1000, dtype=torch.float32) * n + n * (n - 1) // 2
ok = dist.get_backend() == "weft" and "weft_torch" in sys.modules and torch.equal(t, want)
print(f"rank {rank}/{n}: backend {dist.get_backend()}, loaded by entry point: {'weft_torch' in sys.modules}, "
      f"all_reduce {'right' if torch.equal(t, want) else 'WRONG'}")
dist.destroy_process_group()
sys.exit(0 if ok else 1)
