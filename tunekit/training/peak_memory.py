"""Peak memory of one training run, the cost of ``search --also peak_memory`` (issue #12).

On a CUDA device: ``torch.cuda.max_memory_allocated`` (tensors only, the allocator's cache left
out), its peak reset before the run. Elsewhere: the process's peak resident set size, Linux's
``VmHWM``, reset before the run by writing 5 to ``/proc/self/clear_refs`` (proc(5)); where that
file cannot be written the peak is the process's since it started (``getrusage``'s ``ru_maxrss``),
which only ever grows across trials, and :func:`start` says so by returning False.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

MIB = 2**20


def _on_cuda() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_initialized()


def start() -> bool:
    """Reset the peak before a run; False when only the process-wide peak can be read."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_mib() -> float:
    """The peak since :func:`start`, in MiB (device memory when the run used CUDA)."""
    import torch

    if _on_cuda() and torch.cuda.max_memory_allocated() > 0:
        return torch.cuda.max_memory_allocated() / MIB
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / MIB  # kB
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return rss / MIB if sys.platform == "darwin" else rss * 1024 / MIB
