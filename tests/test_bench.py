"""The benchmark runs end to end in its quick mode and reports every figure."""

import json
import subprocess
import sys

import pytest
from helpers import ROOT


def quick_run(module: str, out) -> None:
    """`python -m MODULE --quick --out OUT` in its own process; it must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", module, "--quick", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow  # trains, times and compares whole processes
def test_quick_benchmark_writes_results(tmp_path):
    quick_run("bench", tmp_path)
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


@pytest.mark.slow  # three small trainings and their measurements, each a process
def test_schedule_comparison_reports_every_schedule(tmp_path):
    quick_run("bench.schedules", tmp_path)
    rows = json.loads((tmp_path / "schedules.json").read_text())
    assert [r["schedule"] for r in rows] == ["constant", "poly", "cosine"]
    for r in rows:
        assert 0 < r["final_val_dice"] <= r["best_val_dice"] <= 1
        assert 1 <= r["epochs_to_99"] <= 2 and r["heldout_dice"] > 0
    table = (tmp_path / "schedules.md").read_text()
    assert all(f"| {s} |" in table for s in ("constant", "poly", "cosine"))
