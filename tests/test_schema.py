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
    with pytest.raises(CheckpointError, match="incomplete checkpoint of this tool.*rng_state"):
        TrainingCheckpoint.from_dict(checkpoint, "x.pt")
