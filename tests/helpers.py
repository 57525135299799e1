"""Constants and plain functions the tests share; the shared fixtures are in conftest.py.

Test modules import from here, never from each other.
"""

import errno
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
# run.py flags for a model that trains in a blink: 32 px windows, 8 filters, 3x3 kernels.
TINY = ["-p", "32", "--num-filters", "8", "--kernel", "3", "-b", "4"]
# The recordings of the shared `trained` fixture: 48 rows of 0.2 mm, 240 columns of 4 ms.
TRAINED_TIME_RES_S, TRAINED_DEPTH_RES_MM = 0.004, 0.2


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def same_weights(a: dict, b: dict) -> bool:
    """Whether two checkpoints hold bit-identical network weights."""
    sa, sb = a["net_state_dict"], b["net_state_dict"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# heart_mask's recording: 723 bpm at 0.00083 s per column; LVID is widest at column 75 + 100 k.
HEART_HEIGHT, HEART_WIDTH, HEART_BEAT_COLUMNS = 200, 1200, 100


def heart_mask(amplitude_rows: float) -> np.ndarray:
    """A mask image, which exact_model segments as it is: LVID 120 +- 2 x amplitude rows."""
    wave = amplitude_rows * np.sin(2 * np.pi * np.arange(HEART_WIDTH) / HEART_BEAT_COLUMNS)
    rows = np.arange(HEART_HEIGHT)[:, None]
    return ((rows > 40 + wave) & (rows < 160 - wave)).astype(np.uint8) * 255


def exact_model(batch: torch.Tensor) -> torch.Tensor:
    """Stands in for a perfect network: the window is its own mask (logits +-10)."""
    return (batch > 0.5).float() * 20 - 10


class FullDisk:
    """A file whose first write puts a few bytes on disk and then finds the disk full."""

    def __init__(self, file) -> None:
        self.file = file

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def write(self, data) -> int:
        self.file.write(data[:5])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self.file, name)


def full_disk(monkeypatch, part: str) -> None:
    """Every atomic write (runtime.files) whose temporary file's path holds `part` fails as
    on a full disk, after writing a few bytes."""
    from runtime import files

    real_mkstemp, real_fdopen, names = tempfile.mkstemp, os.fdopen, {}

    def mkstemp(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        names[fd] = name
        return fd, name

    def fdopen(fd, *args, **kwargs):
        file = real_fdopen(fd, *args, **kwargs)
        return FullDisk(file) if part in names.pop(fd, "") else file

    monkeypatch.setattr(files.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(files.os, "fdopen", fdopen)


def points_of_before(trace_csv: str) -> bytes:
    """A synthetic annotation CSV as the generator wrote it when it put a point every two
    columns (and at the last): its rows at those columns, so that fingerprints of earlier
    output still compare."""
    header, *rows = trace_csv.splitlines()
    columns = [int(row.split(",")[1]) for row in rows]
    last = max(columns)
    kept = [
        row for row, column in zip(rows, columns, strict=True) if column % 2 == 0 or column == last
    ]
    return "\n".join([header, *kept, ""]).encode()
