"""Write files so that a crash never leaves a half-written one behind.

Every writer puts its bytes in a temporary file in the destination folder,
flushes and fsyncs it, then renames it over the destination with os.replace,
which is atomic on POSIX and Windows. Any OSError on the way (a full disk, a read-only
folder) becomes one WriteError that names the destination, with the temporary file gone.

lock_folder gives one process at a time a folder to write in.
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from runtime.errors import SetupError, WriteError


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


def read_json(path: Path, error: type[Exception]) -> Any:
    """The JSON content of a folder's optional settings file, None where it is absent;
    `error`, naming the file and the fix, where it cannot be read."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise error(f"cannot read {path} as JSON ({err}); fix or remove it.") from None


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


def read_csv_rows(
    path: str | os.PathLike, name: str
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """A CSV table's header and its non-blank rows as (line, {column: cell}), whitespace
    stripped; SetupError, naming the file as `name` (e.g. "--subjects X"), when it cannot
    be read, is not UTF-8, looks semicolon-separated, names a column twice (the second
    would silently win) or a row has more cells than the header (an unquoted comma would
    shift the values after it)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            header = [cell.strip() for cell in next(reader, [])]
            lines = [(reader.line_num, cells) for cells in reader]
    except UnicodeDecodeError:
        # Excel's plain "CSV" is the system code page (Latin-1 or cp1252 in Europe).
        raise SetupError(f"{name} is not UTF-8 text; save it as CSV UTF-8.") from None
    except (OSError, csv.Error) as err:
        reason = getattr(err, "strerror", None) or err
        raise SetupError(f"cannot read {name} as a CSV file ({reason}).") from None
    if len(header) == 1 and ";" in header[0]:
        # Excel writes ";" where the decimal separator is a comma; one column named "a;b;c"
        # would otherwise be reported as missing columns.
        raise SetupError(
            f"{name} looks semicolon-separated; save it as comma-separated UTF-8 (CSV UTF-8)."
        )
    check_unique_columns(header, name)
    rows = []
    for line, cells in lines:
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(header):
            raise SetupError(
                f"{name}: line {line} has more cells than its header ({len(cells)} for "
                f"{len(header)}); quote cells that hold commas, or remove the extra ones."
            )
        rows.append((line, dict(zip(header, (cell.strip() for cell in cells), strict=False))))
    return header, rows


def check_unique_columns(header: list[str], name: str) -> None:
    """SetupError for a column heading given twice: a row's dict keeps only the last
    cell of a name. Empty headings (a spreadsheet's trailing blank columns) are never
    looked up, so they may repeat."""
    first: dict[str, int] = {}
    for position, column in enumerate(header, start=1):
        if column and column in first:
            raise SetupError(
                f"{name} has two columns named {column!r} (columns {first[column]} and "
                f"{position}); rename or remove one of them."
            )
        first.setdefault(column, position)


# A plain decimal number: sign, digits with an optional point, an optional exponent. ASCII
# digits only; float() also takes "1_000", "inf", "nan" and other scripts' digits, which in
# a lab's table are typos or a spreadsheet's artefacts, not readings.
NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
MISSING_CELLS = ("", "na", "n/a")  # cells that hold no reading, in lower case


def read_number(text: str, line: int, name: str, column: str) -> float | None:
    """A table cell as a number, None when it is empty or NA; SetupError naming the file
    (as `name`), line and column for anything else that is not a plain decimal number."""
    text = text.strip()
    if text.lower() in MISSING_CELLS:
        return None
    value = float(text) if NUMBER.fullmatch(text) else math.inf
    if not math.isfinite(value):  # not a number, or one beyond a float ("1e999")
        raise SetupError(
            f"line {line} of {name}, column {column!r}, holds {text!r}, not a number; "
            "correct it or leave the cell empty."
        )
    return value


def _cell(key: str, value: object, exact: bool) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if not isinstance(value, float) or exact:
        return value
    if key == "time_s" or key.startswith("t_"):
        return f"{value:.6f}"
    return f"{value:.6g}"


# zlib level of figures: a recording's report (14 x 9 inches at 100 dpi) encodes in 0.08 s
# instead of 0.18 s at the default 6, and is 7 % larger; plots compress well either way.
FIGURE_PNG_LEVEL = 3


def save_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save a uint8 array (H, W) or (H, W, 3) as PNG, atomically."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    write_bytes(path, buffer.getvalue())


def save_figure(path: str | os.PathLike, figure: Any, **savefig_kwargs: Any) -> None:
    """Save a matplotlib figure as PNG, atomically."""
    buffer = io.BytesIO()
    pil_kwargs = {"compress_level": FIGURE_PNG_LEVEL}
    figure.savefig(buffer, format="png", pil_kwargs=pil_kwargs, **savefig_kwargs)
    write_bytes(path, buffer.getvalue())


def torch_save(obj: Any, path: str | os.PathLike) -> None:
    """torch.save, atomically: a crash leaves the previous file intact."""
    import torch  # imported here so that tools without a model start fast

    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def make_output_folder(path: str | os.PathLike, flag: str) -> Path:
    """Create the output folder (and its parents) if needed; SetupError if it cannot be
    created or written, found before any recording is read."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SetupError(f"the output {path} is a file; pass a folder with {flag}.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SetupError(
            f"cannot create the output folder {path} ({err.strerror}); pass a folder you can "
            f"write with {flag}."
        ) from None
    check_writable(path, flag)
    return path


def check_writable(path: str | os.PathLike, flag: str) -> None:
    """SetupError unless a file can be created in `path`, or, while it does not exist yet,
    in its nearest existing parent (where it would be made); creates nothing that stays."""
    path = Path(path)
    probe = path if path.is_dir() else next(p for p in path.parents if p.exists())
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        raise SetupError(
            f"cannot write to the output folder {path} ({err.strerror}); make it writable or "
            f"pass another folder with {flag}."
        ) from None


LOCK_NAME = ".lock"


@dataclass
class FolderLock:
    """An exclusive hold on a folder (its .lock file), see lock_folder."""

    path: Path
    fd: int

    def release(self) -> None:
        if self.fd < 0:
            return
        # Remove the file before unlocking: a process that opened it meanwhile finds it
        # gone once it gets the lock, and tries again on a new file (see lock_folder).
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self.fd)
        self.fd = -1


def lock_folder(folder: Path, command: str, flag: str) -> FolderLock:
    """Hold `folder`/.lock exclusively (creating the folder) until release() or exit.

    The operating system drops the lock when the process dies, however it dies, so a
    stale .lock never blocks anyone. SetupError, naming the holder's pid, if another
    process holds it.
    """
    path = folder / LOCK_NAME
    while True:
        fd = _open_lock(path, flag)
        if not _try_lock(fd):
            holder = _read_pid(fd)
            os.close(fd)
            raise _in_use(folder, command, flag, holder)
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(os.fstat(fd), current):
            break
        os.close(fd)  # the holder before us removed this file: lock the new one
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    lock = FolderLock(path, fd)
    atexit.register(lock.release)  # also when the command ends without releasing it
    return lock


def _open_lock(path: Path, flag: str) -> int:
    """The lock file's descriptor (the folder created if needed); SetupError if it cannot be."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise SetupError(
            f"cannot write to the output folder {path.parent} ({err.strerror}); make it "
            f"writable or pass another folder with {flag}."
        ) from None


def lock_and_check(
    folder: Path, command: str, flag: str, check: Callable[[], object]
) -> FolderLock:
    """Hold `folder`'s lock and run `check` again under it, since the folder may have
    changed since it was first checked; the lock is let go if the check fails."""
    lock = lock_folder(folder, command, flag)
    try:
        check()
        return lock
    except BaseException:
        lock.release()
        raise


def remove_files(paths: Iterable[Path], folders: Iterable[Path]) -> None:
    """Delete these files (an earlier run's, for --overwrite), then those of `folders` that
    this left empty, deepest first; a folder still holding anything (the user's) stays."""
    for path in paths:
        path.unlink(missing_ok=True)
    for folder in sorted(set(folders), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty, or already gone
            folder.rmdir()


def check_unlocked(folder: Path, command: str, flag: str) -> None:
    """SetupError if another process holds `folder`'s lock; creates and changes nothing."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY)
    except OSError:  # no lock file (or no folder): nobody holds it
        return
    try:
        if not _try_lock(fd):
            raise _in_use(folder, command, flag, _read_pid(fd))
    finally:
        os.close(fd)  # and with it the lock this probe may have taken


def _in_use(folder: Path, command: str, flag: str, holder: str) -> SetupError:
    return SetupError(
        f"{folder} is in use by another {command} (pid {holder}); wait for it or choose "
        f"another folder with {flag}."
    )


def _try_lock(fd: int) -> bool:
    """Take the lock on an open file without waiting; False if another process has it."""
    try:
        import fcntl
    except ImportError:  # Windows: a byte-range lock, also dropped when the process dies
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)  # away from the pid, which stays readable
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


_WINDOWS_LOCK_OFFSET = 1 << 20


def _read_pid(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 32).decode(errors="replace").strip()
    return text if text.isdigit() else "unknown"
