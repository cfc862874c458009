"""``--jobs N`` on GPUs (issue #11): each worker gets its own slice of the visible devices."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from conftest import TINY

from tunekit.cli import main
from tunekit.errors import BadInput
from tunekit.service.search import check_jobs
from tunekit.service.workers import partition_devices, worker_gpus
from tunekit.training.fit import RunOptions


def test_partition_gives_consecutive_slices_and_keeps_ids():
    assert partition_devices(["0", "1", "2", "3"], 2, 2) == ["0,1", "2,3"]
    assert partition_devices(["0", "1", "2", "3"], 3, 1) == ["0", "1", "2"]  # the fourth stays idle
    assert partition_devices(["GPU-aa", "MIG-bb"], 2, 1) == ["GPU-aa", "MIG-bb"]


def test_partition_refuses_too_few_gpus():
    with pytest.raises(BadInput, match=r"^--jobs 4 --devices 2 needs 8 GPUs, but 4 are visible; lower --jobs"):
        partition_devices(["0", "1", "2", "3"], 4, 2)


def test_cpu_workers_get_no_gpu_list():
    assert worker_gpus(2, RunOptions("cpu")) is None
    if not torch.cuda.is_available():
        assert worker_gpus(2, RunOptions("auto")) is None  # auto without a GPU is the CPU


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without GPUs")
def test_gpu_jobs_on_a_machine_without_gpus_are_refused(storage_url, tmp_path):
    with pytest.raises(BadInput, match="--jobs 1 --devices 1 needs 1 GPUs, but 0 are visible"):
        check_jobs(1, storage_url, RunOptions("gpu"))
    result = CliRunner().invoke(main, ["search", str(TINY), "--accelerator", "gpu", "--jobs", "2", "--trials", "1"])
    assert result.exit_code == 2, result.output
    assert "needs 2 GPUs, but 0 are visible" in result.output
    assert not (tmp_path / "tunekit.db").exists()
