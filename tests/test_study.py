"""A folder measured with worker processes, or shared among torchrun's processes: the same
files, byte for byte, and each recording's files complete or absent when it stops."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import (
    HEART_HEIGHT,
    ROOT,
    TRAINED_DEPTH_RES_MM,
    TRAINED_TIME_RES_S,
    exact_model,
    heart_mask,
)
from PIL import Image

from measurement import recordings, study
from measurement.pipeline import MeasureSettings
from measurement.recordings import Measuring
from measurement.study import Share, measure_recordings, merge_shares, sigterm_as_interrupt
from runtime import files
from runtime.errors import WriteError

TIME_RES_S, DEPTH_RES_MM = 0.00083, 0.025
NAMES = ("a_good", "b_spoilt", "c_weak", "d_broken", "e_good", "f_good")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Six recordings that exact_model measures: good ones, one with two rejected beats,
    one without contraction (failed) and one that is not an image (failed)."""
    folder = tmp_path_factory.mktemp("study") / "in"
    folder.mkdir()
    spoilt = heart_mask(15.0)
    spoilt[:, 473:478] = 0
    images = {"a_good": heart_mask(15.0), "b_spoilt": spoilt, "c_weak": heart_mask(2)}
    images |= {"e_good": heart_mask(12.0), "f_good": heart_mask(18.0)}
    for name, image in images.items():
        Image.fromarray(image).save(folder / f"{name}.png")
        sidecar = {"time_res_s": TIME_RES_S, "depth_res_mm": DEPTH_RES_MM}
        (folder / f"{name}.json").write_text(json.dumps(sidecar))
    (folder / "d_broken.png").write_bytes(b"not a png")
    return folder


def measuring(workers: int, report: bool = True) -> Measuring:
    settings = MeasureSettings(size=HEART_HEIGHT, batch_size=4)
    return Measuring(settings, None, None, report=report, workers=workers, model="exact")


def measure(folder: Path, out: Path, measuring: Measuring) -> int:
    out.mkdir(parents=True)
    return measure_recordings(
        exact_model, sorted(folder.glob("*.png")), measuring, out, folder=True
    )


def contents(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


def test_any_number_of_workers_writes_the_same_files_byte_for_byte(folder, tmp_path, capsys):
    outputs, printed = {}, {}
    for workers in (1, 3):
        # The same folder name: index.html is titled by it.
        assert measure(folder, tmp_path / str(workers) / "out", measuring(workers)) == 1
        outputs[workers] = contents(tmp_path / str(workers) / "out")
        out, err = capsys.readouterr()
        said = [line for line in err.splitlines() if line.startswith(("error:", "warning:"))]
        printed[workers] = (out + "\n".join(said)).replace(str(tmp_path / str(workers)), "")
    assert sorted(outputs[1]) == sorted(outputs[3])
    assert "a_good_report.png" in outputs[1] and "summary.csv" in outputs[1]
    for name, data in outputs[1].items():
        assert outputs[3][name] == data, name
    # The recordings are printed in their order, each warning or error with its recording.
    assert printed[1] == printed[3] and printed[1].count("error: ") == 2


def test_without_the_report_only_the_report_images_are_missing(folder, tmp_path):
    assert measure(folder, tmp_path / "with" / "out", measuring(2)) == 1
    assert measure(folder, tmp_path / "without" / "out", measuring(2, report=False)) == 1
    with_report, without = (
        contents(tmp_path / "with" / "out"),
        contents(tmp_path / "without" / "out"),
    )
    reports = {name for name in with_report if name.endswith("_report.png")}
    assert len(reports) == 5  # all but the broken recording
    assert set(without) == set(with_report) - reports
    for name, data in without.items():
        if name != "index.html":  # it links the reports that exist
            assert data == with_report[name], name
    assert "_report.png" not in without["index.html"].decode()


def test_ctrl_c_with_workers_leaves_each_recording_whole_and_lists_the_finished(
    folder, tmp_path, monkeypatch, capsys
):
    real_save_report = recordings.save_report

    def save_report(path, *args, **kwargs):  # Ctrl-C while one recording is drawn
        if path.name.startswith("e_good"):
            raise KeyboardInterrupt
        real_save_report(path, *args, **kwargs)

    # Patched before the workers are forked, so that they draw with it too.
    monkeypatch.setattr(recordings, "save_report", save_report)
    out = tmp_path / "out"
    assert measure(folder, out, measuring(2)) == 130
    assert "error: interrupted; the recordings measured so far" in capsys.readouterr().err
    listed = [row["name"] for _, row in files.read_csv_rows(out / "summary.csv", "x")[1]]
    assert "e_good" not in listed and "a_good" in listed
    assert not list(out.glob("e_good*"))
    for name in NAMES:
        own = sorted(p.name for p in out.glob(f"{name}_*"))
        if name == "d_broken":  # failed on reading: listed, no files
            assert own == []
        elif name in listed:
            assert f"{name}_summary.json" in own and f"{name}_report.png" in own, own
        else:
            assert own == [], own


def test_a_write_error_in_a_worker_stops_at_once_and_leaves_no_part(
    folder, tmp_path, monkeypatch, capsys
):
    real_write_csv = files.write_csv

    def write_csv(path, *args, **kwargs):
        if Path(path).name == "b_spoilt_beats.csv":
            raise WriteError(path, OSError(28, "No space left on device"))
        real_write_csv(path, *args, **kwargs)

    monkeypatch.setattr(files, "write_csv", write_csv)
    out = tmp_path / "out"
    assert measure(folder, out, measuring(2)) == 1
    err = capsys.readouterr().err
    assert (
        f"error: cannot write {out / 'b_spoilt_beats.csv'} (No space left on device); "
        "free space or choose another folder with -o." in err
    )
    assert "Traceback" not in err
    assert not list(out.glob("b_spoilt*"))
    assert not (out / "summary.csv").exists() and not (out / "index.html").exists()


def test_sigterm_stops_as_ctrl_c_does_and_the_handler_is_put_back():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before


def test_shares_merge_in_the_recordings_order_and_the_process_that_stopped_is_named():
    first, second = Share(rows=[{"name": "r0"}, {"name": "r2"}]), Share(rows=[{"name": "r1"}])
    second.stopped = WriteError("out/r3_mask.png", OSError(28, "No space left on device"))
    merged = merge_shares([first, second])
    assert [row["name"] for row in merged.rows] == ["r0", "r1", "r2"]
    assert merged.stopped_rank == 1 and merged.stopped is second.stopped
    assert merge_shares([first, Share(rows=[{"name": "r1"}])]).stopped is None


def test_the_default_workers_share_the_cores_among_torchruns_processes(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert study.default_workers() == 16
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert study.default_workers() == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "32")
    assert study.default_workers() == 1


@pytest.mark.slow  # two torchrun processes, each importing torch
def test_torchrun_shares_the_recordings_and_writes_what_one_process_writes(
    trained, tmp_path, run_cli
):
    data, checkpoint = trained
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("synth_000", "synth_001", "synth_002"):
        for suffix in ("png", "json"):
            (folder / f"{name}.{suffix}").write_bytes(
                (data / "recordings" / f"{name}.{suffix}").read_bytes()
            )
    (folder / "broken.png").write_bytes(b"not a png")  # fails on whichever process: listed
    flags = ["-d", folder, "-m", checkpoint, "--device", "cpu", "--precision", "fp32"]
    flags += ["--time-res", TRAINED_TIME_RES_S, "--depth-res", TRAINED_DEPTH_RES_MM]
    # One thread, as torchrun gives each of its processes: the network's sums then round
    # alike (index.html keeps every digit; the CSVs' six agree for any thread count).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code, _, _ = run_cli(*flags, "-o", tmp_path / "one" / "out", "--workers", "2")
    finally:
        torch.set_num_threads(threads)
    assert code == 1  # broken.png failed
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(ROOT / "test.py"), *map(str, flags), "-o", str(tmp_path / "two" / "out"),
        "--workers", "2",
    ]  # fmt: skip
    two_processes = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert two_processes.returncode == 1, two_processes.stderr[-3000:]
    one, two = contents(tmp_path / "one" / "out"), contents(tmp_path / "two" / "out")
    assert sorted(one) == sorted(two)
    for name, data_bytes in one.items():
        assert two[name] == data_bytes, name
    page = two["index.html"].decode()
    assert all(f"{name}_report.png" in page for name in ("synth_000", "synth_001", "synth_002"))
    assert two_processes.stdout.count("Measured 3 of 4 recording(s)") == 1  # rank 0 sums up


def test_the_study_benchmark_times_each_worker_count_against_one(tmp_path, capsys):
    from bench import study as study_bench

    argv = ["--quick", "--workers", "2", "1", "--rounds", "1", "--out", str(tmp_path)]
    assert study_bench.main(argv) == 0
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0].startswith("| workers | recordings/s | vs 1 worker |")
    assert [row.split("|")[1].strip() for row in rows[1:]] == ["1", "2"]
    assert rows[1].split("|")[3].strip() == "1.00x"
    for row in rows[1:]:
        per_second, outside = float(row.split("|")[2]), row.split("|")[4].strip()
        assert per_second > 0 and 0 <= int(outside.rstrip("%")) <= 100
    assert (tmp_path / "study.md").read_text() in printed + "\n"
