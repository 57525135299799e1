"""Write files so that a crash never leaves a half-written one behind.

Every writer puts its bytes in a temporary file in the destination folder,
flushes and fsyncs it, then renames it over the destination with os.replace,
which is atomic on POSIX and Windows. Any OSError on the way (a full disk, a read-only
folder) becomes one WriteError that names the destination, with the temporary file gone.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from runtime.errors import WriteError


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to `path`; on success rename it to `path`.

    WriteError (naming `path`) if any step fails; the destination is then untouched.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise WriteError(path, err) from None
    try:
        # mkstemp makes the file private (0600); give it the permissions a plain open() would.
        os.fchmod(fd, 0o666 & ~_umask())
        encoding = None if "b" in mode else "utf-8"
        newline = None if "b" in mode else ""
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError) and not isinstance(err, WriteError):
            # One sentence, not the chain of the writer's own errors (torch.save adds one).
            raise WriteError(path, err) from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; Windows cannot open folders)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def write_csv(
    path: str | os.PathLike, fields: list[str], rows: list[dict], *, exact: bool = False
) -> None:
    """A CSV with these columns (other keys ignored), atomically.

    Floats get 6 significant digits, times (time_s, t_*) 6 decimals, or with `exact` every
    digit; NaN and None are empty cells.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: _cell(k, v, exact) for k, v in row.items()} for row in rows)
    write_text(path, buffer.getvalue())


def _cell(key: str, value: object, exact: bool) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if not isinstance(value, float) or exact:
        return value
    if key == "time_s" or key.startswith("t_"):
        return f"{value:.6f}"
    return f"{value:.6g}"


def save_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save a uint8 array (H, W) or (H, W, 3) as PNG, atomically."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    write_bytes(path, buffer.getvalue())


def save_figure(path: str | os.PathLike, figure: Any, **savefig_kwargs: Any) -> None:
    """Save a matplotlib figure as PNG, atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", **savefig_kwargs)
    write_bytes(path, buffer.getvalue())


def torch_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save, atomically: a crash leaves the previous file intact."""
    import torch  # imported here so that tools without a model start fast

    with atomic_open(path, "wb") as f:
        torch.save(obj, f)
