"""What a run leaves in its output folder: checkpoints, metrics.csv, curves.png, samples/,
split.json and, on request, tensorboard/. Only the main process writes; every file is
written atomically."""

from __future__ import annotations

import importlib.util
import json
import tempfile
from pathlib import Path
from typing import Any

from tqdm import tqdm

from runtime import files
from runtime.distributed import warn
from runtime.errors import SetupError
from training.plots import save_curves, save_samples

CHECKPOINT_NAMES = ("last.pt", "best.pt", "interrupted.pt")


def check_output_folder(output: Path, overwrite: bool, resuming_from: Path | None) -> None:
    """Refuse a folder that is a file, unwritable, or holds another run (unless overwrite)."""
    if output.exists() and not output.is_dir():
        raise SetupError(f"output path {output} is a file; pass a folder with -o.")
    existing = [n for n in CHECKPOINT_NAMES if (output / n).exists()]
    inside = resuming_from is not None and resuming_from.parent.resolve() == output.resolve()
    if existing and not inside and not overwrite:
        raise SetupError(
            f"{output} already holds {', '.join(existing)} from an earlier run; resume it with "
            f"-f {output / existing[0]}, choose another folder with -o, or pass --overwrite."
        )
    probe = output if output.is_dir() else next(p for p in output.parents if p.exists())
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as err:
        raise SetupError(
            f"cannot write to output folder {output} ({err.strerror}); choose another with -o."
        ) from None


class RunOutputs:
    """The output folder of one run."""

    def __init__(self, folder: Path, split: dict, tensorboard: bool) -> None:
        self.folder = folder
        (folder / "samples").mkdir(parents=True, exist_ok=True)
        files.write_text(folder / "split.json", json.dumps(split, indent=1))
        self.tensorboard = _open_tensorboard(folder) if tensorboard else None

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


def _open_tensorboard(folder: Path) -> Any:
    if importlib.util.find_spec("tensorboard") is None:
        warn("--tensorboard needs the tensorboard package (pip install tensorboard); "
             "training goes on without it.")  # fmt: skip
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(folder / "tensorboard"))
