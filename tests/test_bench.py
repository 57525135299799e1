"""The benchmark runs end to end in its quick mode and reports every figure."""

import json
import subprocess
import sys

import pytest
from helpers import ROOT


@pytest.mark.slow  # trains, times and compares whole processes
def test_quick_benchmark_writes_results(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    (size,) = results["sizes"]
    assert size["size"] == 32
    for key in ("train_img_s", "infer_img_s", "train_peak_mb"):
        assert size[key]["baseline"] > 0 and size[key]["ours"] > 0
    assert size["train_gflop_per_img"] > 0
    assert len(results["process"]["seconds"]["ours"]) == 1
    assert set(results["accuracy"]["val_dice"]) == {"auto", "fp32"}
    report = (tmp_path / "RESULTS.md").read_text()
    assert "| 32 |" in report and "Whole processes" in report and "Accuracy" in report
    assert results["machine"]["torch"] in report
