"""What a run leaves in its output folder: checkpoints, metrics.csv, curves.png, samples/,
split.json and, on request, tensorboard/. Only the main process writes; every file is
written atomically.

A run never rewinds the history of a folder. A folder holds one run; resuming it is
allowed only from its newest checkpoint (last.pt or interrupted.pt, whichever is further
on; best.pt or epoch_N.pt only when they are as far), since continuing from an older one
would overwrite the newer last.pt/best.pt and drop rows of metrics.csv. An older
checkpoint resumes into another folder (-o), or into this one with --overwrite, which
first removes every file the earlier run wrote (RUN_FILES) but the checkpoint resumed
from. While a run writes (RunOutputs), it holds the folder's lock (.lock), so a second
run.py on the same folder stops at once instead of mixing its files in.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from quicknat import Progress
from runtime import files
from runtime.distributed import warn
from runtime.errors import SetupError
from runtime.files import FolderLock
from training.config import TrainConfig
from training.plots import save_curves, save_samples

CHECKPOINT_NAMES = ("last.pt", "best.pt", "interrupted.pt")
# Every file a run writes, as glob patterns in its folder: the one list --overwrite clears
# (with the temporary files of writes that were killed), and nothing else.
RUN_FILES = (
    *CHECKPOINT_NAMES,
    "epoch_*.pt",
    "metrics.csv",
    "curves.png",
    "split.json",
    "samples/epoch_*.png",
    "tensorboard/events.out.tfevents.*",
)
RUN_FOLDERS = ("samples", "tensorboard")  # removed by --overwrite only when left empty
# The checkpoints that can be the newest of a folder: last.pt is rewritten every epoch,
# interrupted.pt when a run stops part-way through one.
NEWEST_CANDIDATES = ("last.pt", "interrupted.pt")


def check_output_folder(
    output: Path, overwrite: bool, resuming_from: Path | None, resumed: Progress | None
) -> None:
    """Refuse a folder that is a file, in use, unwritable, holds another run, or whose
    history the resumed checkpoint (at `resumed`) would rewind; --overwrite allows the last
    two."""
    if output.exists() and not output.is_dir():
        raise SetupError(f"output path {output} is a file; pass a folder with -o.")
    files.check_unlocked(output, "run.py", "-o")  # first: a run still writing is no earlier run
    _check_contents(output, overwrite, resuming_from, resumed)


def _check_contents(
    output: Path, overwrite: bool, resuming_from: Path | None, resumed: Progress | None
) -> None:
    existing = [n for n in CHECKPOINT_NAMES if (output / n).exists()]
    inside = resuming_from is not None and resuming_from.parent.resolve() == output.resolve()
    if existing and not inside and not overwrite:
        raise SetupError(
            f"{output} already holds {', '.join(existing)} from an earlier run; resume it with "
            f"-f {output / existing[0]}, choose another folder with -o, or pass --overwrite."
        )
    if inside and not overwrite:
        _refuse_rewind(output, resuming_from, resumed or Progress())
    files.check_writable(output, "-o")


def _refuse_rewind(output: Path, source: Path, resumed: Progress) -> None:
    """SetupError if a checkpoint of `output` is further on than `source` (at `resumed`)."""
    at = (resumed.epoch, resumed.step)
    for name in NEWEST_CANDIDATES:
        newest = _position(output / name)
        if newest is not None and newest > at:
            raise SetupError(
                f"{source} ({_describe(at)}) is older than {output / name} "
                f"({_describe(newest)}), and resuming it into {output} would overwrite that "
                f"newer history; resume from {output / name}, choose another folder with -o, "
                f"or pass --overwrite to rewind {output} to it."
            )


def _position(path: Path) -> tuple[int, int] | None:
    """(completed epochs, steps into the next) of one of our checkpoints; None if unreadable."""
    if not path.is_file():
        return None
    try:  # mmap: only the few numbers wanted are read, not the weights
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        progress = checkpoint.get("progress") or {"epoch": checkpoint["epoch"], "step": 0}
        return int(progress["epoch"]), int(progress["step"])
    except Exception:  # noqa: BLE001 - a damaged file holds no history to protect
        return None


def _describe(at: tuple[int, int]) -> str:
    epoch, step = at
    return f"after epoch {epoch}" + (f", step {step} of epoch {epoch + 1}" if step else "")


def claim_output_folder(config: TrainConfig, resumed: Progress) -> FolderLock:
    """Hold -o's lock and check the folder again under it (it may have changed since
    prepare_training checked it); SetupError if another run holds it or the check fails."""

    def check() -> None:
        _check_contents(config.output, config.overwrite, config.load_path, resumed)

    return files.lock_and_check(config.output, "run.py", "-o", check)


def run_files(folder: Path) -> list[Path]:
    """The files of RUN_FILES in `folder`, and the temporary files of killed writes."""
    found: set[Path] = set()
    for pattern in RUN_FILES:
        sub, _, name = pattern.rpartition("/")
        base = folder / sub if sub else folder
        found.update(base.glob(name))
        found.update(base.glob(f".{name}.*.tmp"))  # runtime.files names them so
    return sorted(p for p in found if p.is_file())


def clear_run_files(folder: Path, keep: Path | None) -> None:
    """Remove an earlier run's files (all of RUN_FILES but `keep`), for --overwrite."""
    keep_resolved = keep.resolve() if keep is not None else None
    earlier = [path for path in run_files(folder) if path.resolve() != keep_resolved]
    files.remove_files(earlier, [folder / name for name in RUN_FOLDERS])


class RunOutputs:
    """The output folder of one run."""

    def __init__(self, config: TrainConfig, split: dict, resumed: Progress) -> None:
        """Hold -o's lock until close(); with --overwrite, first remove the files of the run
        that was there, all but the checkpoint this run resumes from (-f)."""
        self.folder = folder = config.output
        self.lock = claim_output_folder(config, resumed)
        self.tensorboard = None
        try:
            if config.overwrite:
                clear_run_files(folder, config.load_path)
            (folder / "samples").mkdir(parents=True, exist_ok=True)
            files.write_text(folder / "split.json", json.dumps(split, indent=1))
            self.tensorboard = _open_tensorboard(folder) if config.tensorboard else None
        except BaseException:
            self.close()
            raise

    def end_epoch(
        self,
        checkpoint: dict[str, Any],
        history: list[dict[str, float]],
        samples: tuple,
        improved: bool,
        keep_epoch: bool,
    ) -> None:
        """Checkpoints, metrics.csv, curves, samples and a line on the console for an epoch."""
        row = history[-1]
        epoch = row["epoch"]
        files.torch_save(checkpoint, self.folder / "last.pt")
        if improved:
            files.torch_save(checkpoint, self.folder / "best.pt")
        if keep_epoch:
            files.torch_save(checkpoint, self.folder / f"epoch_{epoch}.pt")
        files.write_csv(self.folder / "metrics.csv", list(history[0]), history, exact=True)
        save_curves(history, self.folder / "curves.png")
        save_samples(*samples, self.folder / "samples" / f"epoch_{epoch:03d}.png")
        if self.tensorboard is not None:
            for key, value in row.items():
                if key != "epoch":
                    self.tensorboard.add_scalar(key, value, epoch)
        tqdm.write(
            f"epoch {epoch}: train loss {row['train_loss']:.4f} dice {row['train_dice']:.4f}"
            f" | val loss {row['val_loss']:.4f} dice {row['val_dice']:.4f} iou {row['val_iou']:.4f}"
            f" mse {row['val_mse']:.5f} | {row['seconds']:.1f}s" + (" | best" if improved else "")
        )

    def interrupted(self, checkpoint: dict[str, Any]) -> Path:
        path = self.folder / "interrupted.pt"
        files.torch_save(checkpoint, path)
        return path

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
        self.lock.release()


def _open_tensorboard(folder: Path) -> Any:
    if importlib.util.find_spec("tensorboard") is None:
        warn("--tensorboard needs the tensorboard package (pip install tensorboard); "
             "training goes on without it.")  # fmt: skip
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(folder / "tensorboard"))
