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


def _trainer(tmp_path, make_data, *extra):
    """A Trainer on fresh tiny data in tmp_path (prepared: nothing written yet)."""
    data = make_data(tmp_path / "data")
    argv = ["-d", str(data), "-o", str(tmp_path / "out"), *TINY, *extra]
    return trainer.prepare_training(parse_config(argv))


def test_auto_precision_is_one_this_cpu_runs_natively(tmp_path, make_data):
    # Never fp16 on a CPU; bf16 only where the CPU runs it natively (AVX-512 BF16, AMX).
    chosen = _trainer(tmp_path, make_data, "--device", "cpu").run.precision
    assert chosen in ("fp32", "bf16")
    assert (chosen == "bf16") == hardware.cpu_has_native_bf16()


@pytest.mark.parametrize("precision", ["auto", "fp32", "bf16"])
def test_a_training_step_under_each_cpu_precision_has_a_finite_fp32_loss(
    tmp_path, make_data, precision
):
    t = _trainer(tmp_path, make_data, "--device", "cpu", "--precision", precision)
    before = t.model.encode1.conv2.weight.detach().clone()
    images, masks = t.train_set.__getitems__([0, 1, 2, 3])
    loss, logits, _ = t.train_step(images, masks)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert logits.dtype == (torch.bfloat16 if t.run.precision == "bf16" else torch.float32)
    assert not torch.equal(t.model.encode1.conv2.weight, before)  # the step trained


def test_fp16_on_the_cpu_is_refused_before_anything_is_written(tmp_path, make_data, call_main):
    out = tmp_path / "out"
    argv = ["-d", make_data(), "-o", out, *TINY, "--device", "cpu", "--precision", "fp16"]
    result = call_main(run.main, *argv)
    assert result.code == 2
    assert "--precision fp16 is for GPUs; on the CPU use bf16 or fp32." in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_auto_precision_on_a_gpu_trains_in_half_precision(tmp_path, make_data):
    t = _trainer(tmp_path, make_data, "--device", "cuda")
    # bf16 where the GPU has it; older GPUs get fp16, whose small gradients need the
    # loss scaler to survive.
    assert t.run.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    assert t.scaler.is_enabled() == (t.run.precision == "fp16")
    images, masks = t.train_set.__getitems__([0, 1, 2, 3])
    loss, logits, _ = t.train_step(images, masks)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert logits.dtype in (torch.bfloat16, torch.float16)


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


def test_channels_last_model_and_batches(tmp_path, make_data):
    t = _trainer(tmp_path, make_data, "--channels-last")
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


@pytest.mark.parametrize("name", ["cpu:abc", "cuda:x", "mps:", "", " cpu", "cpu:-1:2"])
def test_unparseable_device_names_are_refused_with_the_names_that_work(name):
    with pytest.raises(SetupError, match=r"is not a device name; use auto, cpu, cuda, cuda:N"):
        hardware.pick_device(name)


def test_a_gpu_index_beyond_the_machine_is_refused():
    if not torch.cuda.is_available():
        with pytest.raises(SetupError, match="is not available here"):
            hardware.pick_device("cuda:0")
        return
    with pytest.raises(SetupError, match=r"GPU\(s\), cuda:0 to"):
        hardware.pick_device(f"cuda:{torch.cuda.device_count()}")


def test_training_steps_never_wait_for_the_device(tmp_path, make_data, monkeypatch):
    """A tensor read on the host (item, float, bool, ...) waits for a GPU to finish; a
    training step must not do one, so an epoch of 8 steps reads as often as one of 2."""
    reads = {"n": 0}
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            reads["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)

    def reads_in_an_epoch(batch_size: str) -> tuple[int, int]:
        t = _trainer(tmp_path / batch_size, make_data, "-b", batch_size, "--augment")
        reads["n"] = 0
        steps = t.train_epoch(1)["n"] / int(batch_size)
        assert steps < trainer.LOG_EVERY
        return steps, reads["n"]

    (long_steps, long_reads), (short_steps, short_reads) = map(reads_in_an_epoch, ("1", "3"))
    assert (long_steps, short_steps) == (6, 2)
    assert long_reads == short_reads


def test_memory_format_by_default_is_the_one_measured_faster_on_each_device():
    assert hardware.memory_format(None, CPU, "bf16") == torch.channels_last
    assert hardware.memory_format(None, CPU, "fp32") == torch.contiguous_format
    for precision in ("bf16", "fp16", "fp32"):
        assert hardware.memory_format(None, CUDA, precision) == torch.contiguous_format
    assert hardware.memory_format(True, CUDA, "bf16") == torch.channels_last
    assert hardware.memory_format(False, CPU, "bf16") == torch.contiguous_format
