"""Precision and device choices, channels_last, streaming above the cache limit, --compile."""

import pytest
import torch
from helpers import TINY, load_checkpoint, same_weights

import run
import trainer
from runtime import hardware
from runtime.errors import SetupError
from runtime.hardware import pick_precision
from training.config import parse_config

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    "device, bf16_gpu, bf16_cpu, expected",
    [
        (CUDA, True, False, "bf16"),
        (CUDA, False, False, "fp16"),
        (CPU, False, True, "bf16"),
        (CPU, False, False, "fp32"),
        (torch.device("mps"), False, True, "fp32"),
    ],
)
def test_auto_precision_follows_the_hardware(monkeypatch, device, bf16_gpu, bf16_cpu, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16_gpu)
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: bf16_cpu)
    assert pick_precision("auto", device) == expected


def test_explicit_precision_is_kept_and_fp16_on_cpu_refused():
    assert pick_precision("fp32", CUDA) == "fp32"
    assert pick_precision("bf16", CPU) == "bf16"
    with pytest.raises(SetupError, match="fp16 is for GPUs"):
        pick_precision("fp16", CPU)


def test_autocast_runs_the_model_in_bf16_and_fp32_stays_fp32():
    layer = torch.nn.Conv2d(1, 2, 3)
    x = torch.rand(1, 1, 8, 8)
    with hardware.autocast(CPU, "bf16"):
        assert layer(x).dtype == torch.bfloat16
    with hardware.autocast(CPU, "fp32"):
        assert layer(x).dtype == torch.float32


def _trainer(tmp_path, make_data, *extra):
    """A Trainer on fresh tiny data in tmp_path (prepared: nothing written yet)."""
    data = make_data(tmp_path / "data")
    argv = ["-d", str(data), "-o", str(tmp_path / "out"), *TINY, *extra]
    return trainer.prepare_training(parse_config(argv))


def test_channels_last_model_and_batches(tmp_path, make_data):
    t = _trainer(tmp_path, make_data)
    assert t.model.encode1.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    images, masks = t.train_set.__getitems__([0, 1])
    batch, _ = t._to_device(images, masks, augment=False)
    assert batch.shape == (2, 1, 32, 32) and batch.dtype == torch.float32
    off = _trainer(tmp_path / "off", make_data, "--no-channels-last")
    assert not off.model.encode1.conv2.weight.is_contiguous(memory_format=torch.channels_last)


def test_cache_limit_switches_to_streaming_with_the_same_result(tmp_path, capsys, make_data):
    data = make_data()
    common = ["-d", str(data), *TINY, "-e", "2", "--augment"]
    assert run.main([*common, "-o", str(tmp_path / "cached")]) == 0
    assert "streaming" not in capsys.readouterr().out
    assert run.main([*common, "-o", str(tmp_path / "streamed"), "--cache-limit", "1e-6"]) == 0
    assert "streaming it from disk" in capsys.readouterr().out
    cached, streamed = (
        load_checkpoint(tmp_path / "cached" / "last.pt"),
        load_checkpoint(tmp_path / "streamed" / "last.pt"),
    )
    assert same_weights(cached, streamed)


def test_compile_failure_falls_back_with_a_message(tmp_path, monkeypatch, capsys, make_data):
    def broken_compile(module):
        def fail(*args, **kwargs):
            raise RuntimeError("no C++ compiler found")

        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    data = make_data()
    argv = ["-d", str(data), "-o", str(tmp_path / "out"), *TINY, "-e", "1", "--compile"]
    assert run.main(argv) == 0
    assert "--compile failed (no C++ compiler found)" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "out" / "last.pt")["epoch"] == 1
