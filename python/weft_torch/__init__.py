"""weft as a torch.distributed backend.

``import weft_torch`` registers the backend "weft"; the package's entry point
in the ``torch.distributed.backends`` group registers it too, so
``torch.distributed.init_process_group("weft")`` works without the import.
CPU tensors run on weft's host data path; CUDA tensors are refused with a
clear error until weft's CUDA executor exists.
"""

import weakref
from datetime import timedelta

import torch
import torch.distributed as dist

from . import _C  # noqa: E402  (needs torch.distributed's types first)

__all__ = ["register", "WeftBackend"]

WeftBackend = _C.WeftBackend

# init_process_group asks the creator once per device the backend serves
# ("cpu" and "cuda"); both get the one communicator of the process group.
_last = {"pg": None, "backend": None}


def _timeout_ms(timeout) -> int:
    if isinstance(timeout, timedelta):
        return max(1, int(timeout.total_seconds() * 1000))
    return max(1, int(float(timeout) * 1000))


def _create(dist_opts, backend_options=None):
    pg = getattr(dist_opts, "process_group", None)
    previous = _last["backend"]() if _last["backend"] is not None else None
    if pg is not None and _last["pg"] is not None and _last["pg"]() is pg and previous is not None:
        return previous
    ranks = [int(r) for r in (dist_opts.global_ranks_in_group or [])]
    backend = WeftBackend(
        dist_opts.store,
        dist_opts.group_rank,
        dist_opts.group_size,
        _timeout_ms(dist_opts.timeout),
        str(dist_opts.group_id),
        ranks,
    )
    try:
        _last["pg"] = weakref.ref(pg) if pg is not None else None
        _last["backend"] = weakref.ref(backend)
    except TypeError:
        _last["pg"] = _last["backend"] = None
    return backend


def register() -> None:
    """Registers "weft" with torch.distributed (again: nothing)."""
    if "WEFT" in dist.Backend._plugins:
        return
    dist.Backend.register_backend("weft", _create, extended_api=True, devices=["cpu", "cuda"])


register()
