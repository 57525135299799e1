"""Fixtures shared by the test modules.

The tests that start whole extra processes (the benchmarks, torchrun) are marked slow.
Everything runs by default; `python -m pytest -m "not slow"` skips them while editing.
"""

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from helpers import ROOT, TRAINED_DEPTH_RES_MM, TRAINED_TIME_RES_S
from PIL import Image

import run
from preprocessing import synthetic

# pytest-xdist runs one worker per core; a worker's torch (and the processes its tests start)
# also using every core would oversubscribe them, and the suite would take longer, not less.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def write_band_data(root: Path, n: int = 8, size: int = 40, seed: int = 0) -> Path:
    """root/img and root/mask: dark bands (the 'cavity') in brighter speckle, and their masks."""
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True)
    (root / "mask").mkdir()
    for i in range(n):
        top, bottom = 8 + rng.integers(0, 6), 24 + rng.integers(0, 8)
        image = (rng.random((size, size)) * 80 + 120).astype(np.uint8)
        image[top:bottom] //= 4
        mask = np.zeros((size, size), np.uint8)
        mask[top:bottom] = 255
        Image.fromarray(image).save(root / "img" / f"rec{i}.png")
        Image.fromarray(mask).save(root / "mask" / f"rec{i}.png")
    return root


@pytest.fixture
def make_data(tmp_path) -> Callable[..., Path]:
    """make_data(root=tmp_path/"data", n=8, size=40, seed=0): a training folder of n pairs
    named rec0..rec{n-1}; the folder's path."""

    def make(root: Path | None = None, n: int = 8, size: int = 40, seed: int = 0) -> Path:
        return write_band_data(tmp_path / "data" if root is None else root, n, size, seed)

    return make


@pytest.fixture
def tiny_data(make_data) -> Path:
    """Eight 40x40 pairs in tmp_path/data: enough for a split and two batches of 4."""
    return make_data()


@pytest.fixture(scope="session")
def measure_cli() -> ModuleType:
    """test.py, loaded by path: `import test` would find the standard library's package."""
    spec = importlib.util.spec_from_file_location("measure_cli", ROOT / "test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Finished:
    """How a command-line entry point ended when called in this process."""

    code: int
    out: str
    err: str


@pytest.fixture
def call_main(capsys) -> Callable[..., Finished]:
    """call_main(main, *argv): run an entry point's main() here, as its process would run.

    An argparse error raises SystemExit; its code counts as the exit status, as it would.
    """

    def call(main: Callable[[list[str]], int], *argv: object) -> Finished:
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exit_:
            code = exit_.code
        out, err = capsys.readouterr()
        return Finished(code, out, err)

    return call


class _RunsCode:
    """Unpickling this runs a shell command (the marker file shows whether it ran)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def evil_checkpoint(tmp_path) -> tuple[Path, Path]:
    """(a .pt file whose unpickling would create `marker`, marker); marker does not exist."""
    path, marker = tmp_path / "evil.pt", tmp_path / "ran"
    torch.save({"net_state_dict": _RunsCode(marker), "epoch": 3}, path)
    assert not marker.exists()
    return path, marker


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Three small synthetic recordings, their windows, and a model trained on them.

    12 epochs: after 4 the tiny model's LVIDd was up to 0.9 mm off the truth. Trained on
    the CPU in fp32 wherever the tests run, so that the tolerances measured for it hold.
    Clean recordings (--no-artefacts), the ones those tolerances were measured on, and
    grey / 255 input (--input-norm unit), the one they were measured with: with rank input
    this 8-filter model at 48 px accepted fewer beats of synth_000 (101 of its 240 columns
    exported, against more than half).
    """
    root = tmp_path_factory.mktemp("cli")
    data = root / "data"
    assert (
        synthetic.main(
            ["--out", str(data), "--recordings", "3", "--height", "48", "--width", "240",
             "--depth-res", str(TRAINED_DEPTH_RES_MM), "--time-res", str(TRAINED_TIME_RES_S),
             "--no-artefacts"]
        )
        == 0
    )  # fmt: skip
    torch.manual_seed(0)
    assert (
        run.main(
            ["-d", str(data), "-e", "12", "-b", "4", "-p", "48", "-l", "0.01",
             "--num-filters", "8", "--kernel", "3", "--input-norm", "unit", "--device", "cpu",
             "--precision", "fp32", "-o", str(root / "model")]
        )
        == 0
    )  # fmt: skip
    return data, root / "model" / "best.pt"


@pytest.fixture
def run_cli(call_main, measure_cli):
    """run_cli(*argv): test.py's main in this process; (exit status, stdout, stderr)."""

    def run(*argv):
        result = call_main(measure_cli.main, *argv)
        return result.code, result.out, result.err

    return run
