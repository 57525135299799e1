"""The Python example in docs/measure_from_python.md runs and measures what test.py does."""

import json
import re

import pytest
from helpers import ROOT

from mmode.images import read_recording

PAGE = ROOT / "docs" / "measure_from_python.md"


def example_code() -> str:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "the page should hold one Python example"
    return blocks[0]


def test_the_example_prints_the_beats_and_agrees_with_test_py(
    tmp_path, monkeypatch, capsys, run_cli
):
    monkeypatch.chdir(tmp_path)  # the example writes example/ where it runs
    namespace: dict = {}
    exec(compile(example_code(), str(PAGE), "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    result, summary = namespace["result"], namespace["summary"]
    beat_lines = [line for line in printed if " LVIDd " in line and " s " in line]
    assert len(beat_lines) == len(result.beats) >= 5
    assert sum(line.endswith("accepted") for line in beat_lines) == summary["n_beats_accepted"]

    recording = tmp_path / "example" / "recordings" / "synth_000.png"
    assert read_recording(recording)[0].shape == namespace["image"].shape
    code, _, err = run_cli("-d", recording, "-o", tmp_path / "cli", "--workers", "1")
    assert code == 0, err
    cli = json.loads((tmp_path / "cli" / "synth_000_summary.json").read_text())
    for key in ("n_beats", "n_beats_accepted", "lvid_d_mm", "lvid_s_mm", "heart_rate_bpm"):
        assert summary[key] == pytest.approx(cli[key], rel=1e-9), key
    truth = json.loads((tmp_path / "example" / "truth" / "synth_000.json").read_text())
    assert summary["lvid_d_mm"] == pytest.approx(truth["lvid_d_mm"], abs=0.3)
