"""The benchmark runs end to end in its quick mode and reports every figure."""

import argparse
import json
import subprocess

import pytest
from helpers import ROOT

from bench import limits, model_sizes, schedules


def quick_run(call_main, main, out) -> None:
    """`python -m BENCHMARK --quick --out OUT`, its main run in this process, where torch
    and the project are imported already; it must succeed."""
    result = call_main(main, "--quick", "--out", out)
    assert result.code == 0, (result.code, result.err[-2000:])  # sys.exit's message, stderr


@pytest.mark.slow  # trains, times and compares whole processes
def test_the_gpu_script_runs_on_the_cpu_at_tiny_sizes_and_reports_every_figure(tmp_path):
    result = subprocess.run(
        ["bash", "bench/gpu.sh", "--device", "cpu", "--quick", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    (size,) = results["sizes"]
    assert size["size"] == 32
    for key in ("train_img_s", "infer_img_s", "train_peak_mb"):
        assert size[key]["baseline"] > 0 and size[key]["ours"] > 0
    assert size["train_gflop_per_img"] > 0 and results["peak"]["gflops"] > 0
    assert len(results["process"]["seconds"]["ours"]) == 1
    assert set(results["accuracy"]["val_dice"]) == {"auto", "fp32"}
    assert [v["train_img_s"] > 0 for v in results["variants"]] == [True, True]
    startup = results["startup"]
    assert len(startup["epoch_s"]) == 3 and startup["first_s"] == startup["epoch_s"][0]
    ops = size["profile"]
    assert ops and all(op["ms_per_step"] > 0 for op in ops)
    assert any("convolution" in op["op"] for op in ops)
    report = (tmp_path / "RESULTS.md").read_text()
    for part in ("| 32 |", "Whole processes", "Accuracy", "Variants", "Start-up",
                 "Matrix-multiply peak", "calls per step", "## Targets"):  # fmt: skip
        assert part in report
    assert results["machine"]["torch"] in report


def test_a_variant_that_fails_or_runs_too_long_gets_a_note(tmp_path, make_data):
    data = limits.repeated_windows(make_data(tmp_path / "d", n=4), tmp_path / "r", 6)
    assert len(list((data / "img").iterdir())) == 6
    common = ["-p", "32", "--num-filters", "8", "--kernel", "3", "-b", "2", "--device", "cpu"]
    (slow,) = limits.time_variants(data, {"slow": []}, common, timeout_s=0.01)
    assert slow["note"] == "did not finish in 0.01 s"
    rows = limits.time_variants(data, {"bad": ["--kernel", "4"]}, common, timeout_s=60)
    assert rows[0]["note"].startswith("failed: ") and "kernel" in rows[0]["note"]


@pytest.mark.slow  # three small trainings and their measurements
def test_schedule_comparison_reports_every_schedule(tmp_path, call_main):
    quick_run(call_main, schedules.main, tmp_path)
    rows = json.loads((tmp_path / "schedules.json").read_text())
    assert [r["schedule"] for r in rows] == ["constant", "poly", "cosine"]
    for r in rows:
        assert 0 < r["final_val_dice"] <= r["best_val_dice"] <= 1
        assert 1 <= r["epochs_to_99"] <= 2 and r["heldout_dice"] > 0
    table = (tmp_path / "schedules.md").read_text()
    assert all(f"| {s} |" in table for s in ("constant", "poly", "cosine"))


@pytest.mark.slow  # a small training, its measurements and timings
def test_model_size_table_has_accuracy_and_cost_for_every_size(tmp_path, call_main):
    quick_run(call_main, model_sizes.main, tmp_path)
    rows = json.loads((tmp_path / "model_sizes.json").read_text())
    (row,) = rows
    assert (row["filters"], row["kernel"], row["im_size"]) == (8, 3, 32)
    assert row["parameters"] == 22_328 and 0 < row["heldout_dice"] <= 1
    assert row["train_img_s"] > 0 and row["measure_s"] > 0 and row["columns"] > 0
    assert "| 8 | 3 | 32 | 22,328 |" in (tmp_path / "model_sizes.md").read_text()


def test_model_sizes_are_given_as_filters_kernel_px():
    from bench.model_sizes import Size, parse_size

    assert parse_size("16,3,128") == Size(16, 3, 128) and Size(16, 3, 128).name == "f16_k3_p128"
    with pytest.raises(argparse.ArgumentTypeError, match="FILTERS,KERNEL,PX"):
        parse_size("16,3")
