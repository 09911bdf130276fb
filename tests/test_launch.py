"""torchrun_command: when the train stage reruns itself under torchrun, and with which command;
and one GPU per process on a GPU machine."""

import sys

import pytest

from mlbert.errors import ParamsError
from mlbert.launch import check_one_gpu_each, local_processes, torchrun_command


@pytest.fixture
def not_launched(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)


def test_one_process_runs_here(not_launched):
    assert torchrun_command("stages/train.py", 1) is None


def test_a_script_already_under_a_launcher_is_not_launched_again(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert torchrun_command("stages/train.py", 4) is None


def test_several_processes_rerun_the_script_under_standalone_torchrun(not_launched):
    assert torchrun_command("stages/train.py", 4) == [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4", "stages/train.py",
    ]  # fmt: skip


# One GPU per process: checked before anything starts, not left to a CUDA error in a worker.


def test_a_gpu_machine_refuses_more_processes_than_gpus_naming_the_param():
    with pytest.raises(ParamsError, match=r"launch.num_processes is 2, but this machine has 1 GPU.*at most 1"):
        check_one_gpu_each(2, "launch.num_processes", gpus=1)


def test_as_many_processes_as_gpus_and_any_number_on_a_cpu_machine_are_fine():
    check_one_gpu_each(4, "launch.num_processes", gpus=4)
    check_one_gpu_each(8, "launch.num_processes", gpus=0)


def test_a_worker_counts_the_processes_torchrun_started_on_its_machine(monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert local_processes(1) == (8, "torchrun --nproc-per-node")
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    assert local_processes(2) == (2, "launch.num_processes")
