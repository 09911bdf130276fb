"""torchrun_command: when the train stage reruns itself under torchrun, and with which command."""

import sys

import pytest

from mlbert.launch import torchrun_command


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
