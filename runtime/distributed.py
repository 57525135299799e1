"""The processes of a torchrun job: who talks, and how they agree.

A plain run is a job of one process, so every helper here is a no-op there.
"""

from __future__ import annotations

import datetime
import os
import sys

import torch
import torch.distributed as dist


def distributed_rank() -> tuple[int, int, int]:
    """(rank, world size, local rank) as torchrun sets them; (0, 1, 0) in a plain run."""
    return (
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("LOCAL_RANK", 0)),
    )


def is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a plain run: the one process that talks and writes."""
    return distributed_rank()[0] == 0


def say(message: str) -> None:
    """Print once per job, not once per process."""
    if is_main_process():
        print(message)


def warn(message: str) -> None:
    """A warning on stderr, once per job."""
    if is_main_process():
        print(f"warning: {message}", file=sys.stderr)


def process_device(device: torch.device) -> torch.device:
    """The GPU of this process in a torchrun job of several (its local rank's), else `device`."""
    _, world, local_rank = distributed_rank()
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def first_failure(failure: object | None) -> tuple[int, object] | None:
    """The lowest rank whose `failure` is not None, with it, the same in every process
    (so that all stop together, and one says why); None where none failed."""
    failures = [failure]
    if dist.is_initialized():
        failures = [None] * dist.get_world_size()
        dist.all_gather_object(failures, failure)
    for rank, value in enumerate(failures):
        if value is not None:
            return rank, value
    return None


def start_processes(device: torch.device, timeout: datetime.timedelta | None = None) -> None:
    """Join the torchrun job, if this is one; `timeout`: how long a process waits for the
    others at a meeting point (None: torch's default)."""
    if distributed_rank()[1] > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timeout)


def stop_processes() -> None:
    """Leave the job together: without the barrier, torch 2.4's gloo left one process
    hanging in destroy_process_group in about half of the two-process test runs."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def any_process(flags: list[bool], device: torch.device) -> list[bool]:
    """Each flag, true if it is true in any process (so that all stop together)."""
    return [bool(v) for v in max_over_processes([float(f) for f in flags], device)]


def max_over_processes(values: list[float], device: torch.device) -> list[float]:
    """Each value's maximum over all processes."""
    if not dist.is_initialized():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def sum_over_processes(
    sums: dict[str, float | torch.Tensor], device: torch.device
) -> dict[str, float]:
    """Each value (a number, or a running sum on the device) summed over all processes, as
    a float64 number."""
    sums = {k: float(v) for k, v in sums.items()}
    if not dist.is_initialized():
        return sums
    t = torch.tensor(list(sums.values()), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(sums, t.tolist(), strict=True))


def share_buffers(module: torch.nn.Module) -> None:
    """Give every process rank 0's buffers (batch-norm statistics), so all evaluate alike."""
    if dist.is_initialized():
        for buffer in module.buffers():
            dist.broadcast(buffer, 0)
