"""test.py without -m measures with the shipped model, and every output names the model."""

import csv
import html
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ROOT
from PIL import Image

from measurement import inference
from measurement.recordings import SUMMARY_FIELDS
from quicknat import QuickNat
from quicknat.schema import FORMAT_VERSION

SHIPPED_LINE = (
    "Using the shipped model weights/synthetic.pt (trained on synthetic recordings only); "
    "pass -m for your own."
)


def save_tiny_checkpoint(path: Path) -> Path:
    """An untrained 8-filter model in our format, trained (it says) on 32 px windows: it
    measures nothing useful, but in a blink, and every output file is still written."""
    torch.manual_seed(0)
    net = QuickNat({"num_filters": 8, "kernel_h": 3, "kernel_w": 3})
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "format_version": FORMAT_VERSION,
        "net_state_dict": net.state_dict(),
        "model_config": net.config.to_dict(),
        "im_size": 32,
    }
    torch.save(checkpoint, path)
    return path


@pytest.fixture
def recordings(tmp_path) -> Path:
    """A folder with one small beating recording (and its sidecar) and one broken file."""
    folder = tmp_path / "in"
    folder.mkdir()
    rows = np.arange(48)[:, None]
    wave = 6 * np.sin(2 * np.pi * np.arange(240) / 24)
    image = np.where((rows > 12 + wave) & (rows < 36 - wave), 30, 200).astype(np.uint8)
    Image.fromarray(image).save(folder / "rec.png")
    (folder / "rec.json").write_text(json.dumps({"time_res_s": 0.004, "depth_res_mm": 0.2}))
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


@pytest.fixture
def run_cli(call_main, measure_cli):
    """run_cli(*argv): test.py's main on the CPU in this process."""
    return lambda *argv: call_main(measure_cli.main, *argv, "--device", "cpu")


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def assert_outputs_name(out: Path, model: str) -> None:
    """summary.csv (every row, failed ones too), REC_summary.json and index.html."""
    header, rows = read_csv(out / "summary.csv")
    assert header == SUMMARY_FIELDS and header[-1] == "model"
    # The untrained model finds no complete beat in rec either, so both rows are failed ones.
    assert [row["name"] for row in rows] == ["broken", "rec"]
    assert all(row["model"] == model for row in rows)
    assert json.loads((out / "rec_summary.json").read_text())["model"] == model
    page = (out / "index.html").read_text()
    assert f"Measured with {html.escape(model)}." in page


def test_the_shipped_model_lies_in_the_repository():
    assert inference.SHIPPED_MODEL == "weights/synthetic.pt"
    assert inference.shipped_model_path() == ROOT / "weights" / "synthetic.pt"


def test_without_m_the_shipped_model_measures_and_says_so(
    tmp_path, recordings, run_cli, monkeypatch
):
    repository = tmp_path / "repo"
    save_tiny_checkpoint(repository / inference.SHIPPED_MODEL)
    monkeypatch.setattr(inference, "REPOSITORY", repository)
    # Found from the repository, not from the working directory.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = tmp_path / "out"
    result = run_cli("-d", recordings, "-o", out)
    assert result.code == 1  # broken.png and rec failed (no beat found by an untrained model)
    assert result.out.splitlines()[0] == SHIPPED_LINE
    assert "Model: weights/synthetic.pt" in result.out.splitlines()
    assert "Traceback" not in result.err
    assert_outputs_name(out, "weights/synthetic.pt")


def test_a_missing_shipped_model_is_one_sentence_and_status_2(
    tmp_path, recordings, run_cli, monkeypatch
):
    monkeypatch.setattr(inference, "REPOSITORY", tmp_path / "bare_copy")
    out = tmp_path / "out"
    result = run_cli("-d", recordings, "-o", out)
    assert result.code == 2
    assert result.err.startswith("error: the shipped model weights/synthetic.pt is missing")
    assert result.err.rstrip().endswith("pass your own checkpoint with -m.")
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert "Using the shipped model" not in result.out
    assert not out.exists()


def test_every_output_names_the_checkpoint_given_with_m(tmp_path, recordings, run_cli):
    checkpoint = save_tiny_checkpoint(tmp_path / "r&d <lab>" / "best.pt")  # HTML-escaped
    out = tmp_path / "out"
    result = run_cli("-d", recordings, "-m", checkpoint, "-o", out)
    assert result.code == 1
    assert "Using the shipped model" not in result.out
    assert f"Model: {checkpoint}" in result.out.splitlines()
    assert_outputs_name(out, str(checkpoint))
    assert "r&d <lab>" not in (out / "index.html").read_text()


def test_a_test_sets_metrics_name_the_checkpoint(tmp_path, tiny_data, run_cli):
    checkpoint = save_tiny_checkpoint(tmp_path / "best.pt")
    out = tmp_path / "out"
    result = run_cli("-d", tiny_data, "-m", checkpoint, "-o", out)
    assert result.code == 0
    assert json.loads((out / "metrics.json").read_text())["model"] == str(checkpoint)
    assert str(checkpoint) in result.out
