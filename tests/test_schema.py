"""One checkpoint schema: the trainer writes it; resume, test-set scoring and measurement read
it; checkpoints of format_version 1 keep working."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import run
from quicknat import CheckpointError, TrainingCheckpoint, trained_im_size

TINY = ["--num-filters", "8", "--kernel", "3", "-b", "4"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Bands in speckle, and one epoch of training at 48 px."""
    root = tmp_path_factory.mktemp("schema")
    rng = np.random.default_rng(0)
    for folder in ("img", "mask"):
        (root / "data" / folder).mkdir(parents=True)
    for i in range(6):
        image = (rng.random((40, 40)) * 80 + 120).astype(np.uint8)
        image[10:25] //= 4
        mask = np.zeros((40, 40), np.uint8)
        mask[10:25] = 255
        Image.fromarray(image).save(root / "data" / "img" / f"w{i}.png")
        Image.fromarray(mask).save(root / "data" / "mask" / f"w{i}.png")
    argv = ["-d", str(root / "data"), "-o", str(root / "run"), "-p", "48", "-e", "1", *TINY]
    assert run.main(argv) == 0
    return root


def as_version_1(checkpoint: dict) -> dict:
    """What this tool wrote before the image size had its own field."""
    old = {k: v for k, v in checkpoint.items() if k != "im_size"}
    old["format_version"] = 1
    return old


def test_the_training_size_is_its_own_field(trained):
    checkpoint = torch.load(trained / "run" / "last.pt", weights_only=True)
    assert checkpoint["format_version"] == 2 and checkpoint["im_size"] == 48
    assert trained_im_size(checkpoint) == 48
    assert trained_im_size(as_version_1(checkpoint)) == 48  # from its flags
    assert trained_im_size({"net_state_dict": checkpoint["net_state_dict"]}) is None


def test_measurement_reads_the_size_from_the_schema(trained, tmp_path, measure_cli):
    checkpoint = torch.load(trained / "run" / "last.pt", weights_only=True)
    checkpoint["args"]["im_size"] = 80  # the record of the flags is not what is read
    torch.save(checkpoint, tmp_path / "v2.pt")
    torch.save(as_version_1(checkpoint), tmp_path / "v1.pt")
    for name, size in (("v2", 48), ("v1", 80)):
        out = tmp_path / name
        argv = ["-d", str(trained / "data"), "-m", str(tmp_path / f"{name}.pt"), "-o", str(out)]
        assert measure_cli.main(argv) == 0
        assert json.loads((out / "metrics.json").read_text())["size"] == size


def test_a_version_1_checkpoint_resumes_exactly_like_its_version_2(trained, tmp_path):
    checkpoint = torch.load(trained / "run" / "last.pt", weights_only=True)
    results = {}
    for name, saved in (("v2", checkpoint), ("v1", as_version_1(checkpoint))):
        out = tmp_path / name
        out.mkdir()
        torch.save(saved, out / "start.pt")
        argv = ["-d", str(trained / "data"), "-o", str(out), "-p", "48", "-e", "1", *TINY]
        assert run.main([*argv, "-f", str(out / "start.pt")]) == 0
        results[name] = torch.load(out / "last.pt", weights_only=True)
    assert results["v1"]["epoch"] == results["v2"]["epoch"] == 2
    for key, value in results["v2"]["net_state_dict"].items():
        assert torch.equal(results["v1"]["net_state_dict"][key], value), key


def test_an_incomplete_checkpoint_of_ours_is_named_with_the_fix(trained):
    checkpoint = torch.load(trained / "run" / "last.pt", weights_only=True)
    del checkpoint["rng_state"]
    with pytest.raises(CheckpointError, match="damaged checkpoint of this tool.*rng_state"):
        TrainingCheckpoint.from_dict(checkpoint, "x.pt")


def damage(checkpoint: dict, key: str, inner: str | None, value: object) -> dict:
    """The checkpoint with checkpoint[key] (or checkpoint[key][inner]) replaced; None deletes."""
    target = checkpoint[key] if inner else checkpoint
    name = inner or key
    if value is None:
        del target[name]
    else:
        target[name] = value
    return checkpoint


@pytest.mark.parametrize(
    "key, inner, value",
    [
        ("split", None, None),
        ("split", None, ["a.png"]),
        ("split", "train", None),
        ("split", "val", "w0.png"),
        ("split", "train", [1, 2]),
        ("rng_state", None, None),
        ("rng_state", None, "seed"),
        ("rng_state", "torch", None),
        ("rng_state", "torch", torch.zeros(3, dtype=torch.uint8)),
        ("rng_state", "torch", torch.zeros(5056)),
        ("progress", None, None),
        ("progress", None, 3),
        ("progress", "epoch", None),
        ("progress", "epoch", "one"),
        ("progress", "best_dice", "high"),
        ("progress", "history", {"val_dice": 1.0}),
        ("progress", "surprise", 1),
        ("lr_plan", None, "cosine"),
    ],
)
def test_a_damaged_field_of_our_checkpoint_is_one_error_line(
    trained, tmp_path, call_main, key, inner, value
):
    checkpoint = torch.load(trained / "run" / "last.pt", weights_only=True)
    torch.save(damage(checkpoint, key, inner, value), tmp_path / "damaged.pt")
    argv = ["-d", trained / "data", "-o", tmp_path / "out", "-p", "48", "-e", "1", *TINY]
    done = call_main(run.main, *argv, "-f", tmp_path / "damaged.pt")
    assert done.code == 2 and "Traceback" not in done.err
    [line] = done.err.strip().splitlines()
    start = f"error: {tmp_path / 'damaged.pt'} is an incomplete or damaged checkpoint of this tool"
    assert line.startswith(f"{start} (its {key} is ")
    assert line.endswith("); resume from another one or start afresh.")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text", ["hello world\n", "epoch: 3\n", "abc" * 100])
def test_a_text_file_as_a_checkpoint_is_one_error_line(
    trained, tmp_path, call_main, measure_cli, text
):
    path = tmp_path / "notes.pt"
    path.write_text(text)
    expected = [
        f"error: {path} is not a PyTorch checkpoint (a text file?); pass the .pt file a training "
        "run wrote."
    ]
    train = ["-d", trained / "data", "-o", tmp_path / "out", "-p", "48", "-e", "1", *TINY]
    measure = ["-d", trained / "data" / "img", "-o", tmp_path / "measured"]
    for main, argv in (
        (run.main, [*train, "-f", path]),
        (measure_cli.main, [*measure, "-m", path]),
    ):
        done = call_main(main, *argv)
        assert done.code == 2 and done.err.strip().splitlines() == expected, done.err


def test_a_checkpoint_with_flipped_bytes_is_refused(trained, tmp_path, call_main, measure_cli):
    data = bytearray((trained / "run" / "last.pt").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 2000] = bytes(b ^ 0xFF for b in data[middle : middle + 2000])
    path = tmp_path / "flipped.pt"
    path.write_bytes(bytes(data))
    argv = ["-d", trained / "data" / "img", "-o", tmp_path / "measured", "-m", path]
    done = call_main(measure_cli.main, *argv)
    assert done.code == 2 and "Traceback" not in done.err
    [line] = done.err.strip().splitlines()
    assert line.startswith(f"error: {path} is damaged: the checksum of its part ")
    assert not (tmp_path / "measured").exists()
