"""The peak-memory cost of search --also peak_memory (issue #12), measured on this process."""

from __future__ import annotations

import sys

import pytest
import torch

from tunekit.training import peak_memory


@pytest.mark.skipif(not sys.platform.startswith("linux") or torch.cuda.is_available(), reason="CPU peak RSS on Linux")
def test_peak_rss_sees_an_allocation_and_resets_between_runs():
    assert peak_memory.start()  # /proc/self/clear_refs is writable: the peak is this run's
    before = peak_memory.peak_mib()
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    grown = peak_memory.peak_mib()
    del block
    assert grown - before >= 60
    assert peak_memory.start()
    assert peak_memory.peak_mib() < grown - 30  # the next run does not inherit the previous peak
