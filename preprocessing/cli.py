"""Shared by the command-line entry points: flags, folder checks, progress bar, exit status."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from preprocessing.summary import Summary, print_summary
from runtime import files
from runtime.errors import SetupError, WriteError

T = TypeVar("T")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one sentence on stderr (exit 2), like our own."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message}; run with -h for the options.\n")


def add_path_flag(parser: argparse.ArgumentParser, flag: str, metavar: str, help: str) -> None:
    """A required path flag such as --images; " (required)" is added to `help`."""
    parser.add_argument(flag, metavar=metavar, type=Path, required=True, help=f"{help} (required)")


def add_time_res_flag(parser: argparse.ArgumentParser, help: str) -> None:
    """--time-res, seconds per column; `help` says which flags use it."""
    parser.add_argument("--time-res", metavar="S", type=float, help=help)


def add_overwrite_and_progress_flags(parser: argparse.ArgumentParser) -> None:
    """--overwrite and --no-progress, the same in every command."""
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace outputs that already exist (default: keep them and report the recording "
        "as a problem)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="hide the progress bar (default: shown)"
    )


def require_dir(path: Path, what: str, flag: str) -> Path:
    """`path` as an existing folder, or a SetupError that says which flag to fix."""
    path = Path(path)
    if not path.is_dir():
        state = "is not a folder" if path.exists() else "does not exist"
        raise SetupError(f"the {what} folder {path} {state}; pass an existing folder with {flag}.")
    return path


def require_file(path: Path, what: str, flag: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise SetupError(
            f"the {what} file {path} does not exist; pass an existing file with {flag}."
        )
    return path


def make_data_dir(out_dir: Path, inputs: list[Path]) -> Path:
    """Create DATA/img and DATA/mask, refusing to write windows into an input folder."""
    out_dir = files.make_output_folder(out_dir, "--out")
    for sub in ("img", "mask"):
        if any((out_dir / sub).resolve() == Path(folder).resolve() for folder in inputs):
            raise SetupError(f"{out_dir / sub} is also an input folder; pick another --out.")
        files.make_output_folder(out_dir / sub, "--out")
    return out_dir


def require_positive(value: float | None, flag: str) -> None:
    if value is not None and not value > 0:
        raise SetupError(f"{flag} must be positive, got {value}.")


def progress(items: Iterable[T], enabled: bool) -> Iterable[T]:
    """A tqdm bar on stderr over recordings; silent when `enabled` is False."""
    return tqdm(items, disable=not enabled, file=sys.stderr, unit="recording")


def finish(command: str, action: Callable[[], Summary], *, count_windows: bool) -> int:
    """Run a command, print its summary and return the exit status (0, 1 problems or
    stopped by a file it could not write, 2 usage)."""
    try:
        summary = action()
    except SetupError as err:
        print(f"{command}: error: {err}", file=sys.stderr)
        return 2
    except WriteError as err:
        print(f"{command}: error: {err.advice('--out')}", file=sys.stderr)
        return 1
    print_summary(command, summary, count_windows=count_windows)
    return summary.exit_code
