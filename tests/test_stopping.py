"""Stopping a run: under torchrun the processes agree once every CHECK_EVERY steps, and
all stop at the same step, before a group that a file failed to read in."""

import signal

import pytest
import torch

from dataset import FileChanged
from training import stopping
from training.stopping import CHECK_EVERY, Stopping

CPU = torch.device("cpu")


@pytest.fixture
def agreements(monkeypatch) -> list:
    """The cross-process calls, as (signal noted, read error noted) per call."""
    calls = []

    def any_process(flags, device):
        calls.append(tuple(flags))
        return list(flags)  # this process alone: what it knows is what all know

    monkeypatch.setattr(stopping, "any_process", any_process)
    return calls


def test_under_torchrun_the_processes_agree_once_every_check_every_steps(agreements):
    steps = 5 * CHECK_EVERY + 3
    assert list(Stopping(CPU, world=2).batches(range(steps))) == list(range(steps))
    assert len(agreements) <= steps // CHECK_EVERY + 2  # one a group, one at the end
    agreements.clear()
    assert list(Stopping(CPU, world=1).batches(range(steps))) == list(range(steps))
    assert len(agreements) == steps + 1  # one process: local, at every step


def test_a_signal_stops_all_processes_at_the_end_of_the_group():
    stop, seen = Stopping(CPU, world=2), []
    for batch in stop.batches(range(10 * CHECK_EVERY)):
        seen.append(batch)
        if batch == CHECK_EVERY + 5:
            stop.signal = signal.SIGTERM
    assert seen == list(range(2 * CHECK_EVERY))
    assert stop.exit_code() == 143


def test_a_file_that_fails_mid_group_stops_before_that_group():
    def loader():
        yield from range(CHECK_EVERY + 7)
        raise FileChanged("img/a.png no longer reads")

    stop = Stopping(CPU, world=2)
    assert list(stop.batches(loader())) == list(range(CHECK_EVERY))
    assert str(stop.read_error) == "img/a.png no longer reads" and stop.exit_code() == 1
    with pytest.raises(FileChanged, match="no longer reads\nStopped in epoch 1"):
        stop.report("in epoch 1; saved interrupted.pt.")


def test_another_processs_stop_is_taken_as_sigterm(monkeypatch):
    monkeypatch.setattr(stopping, "any_process", lambda flags, device: [True, False])
    stop = Stopping(CPU, world=2)
    assert stop.agreed() and stop.signal == signal.SIGTERM
    monkeypatch.setattr(stopping, "any_process", lambda flags, device: [False, True])
    stop = Stopping(CPU, world=2)
    assert stop.agreed() and "another process's file" in str(stop.read_error)
