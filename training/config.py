"""run.py's flags, parsed once into a typed TrainConfig.

The parser is the one place a flag is written: the resume command printed after an
interruption is generated from it, so a new flag needs no second spelling.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmode.tensors import MAX_WINDOW_PX
from quicknat.flags import add_model_flags, model_settings
from runtime.errors import SetupError
from runtime.hardware import add_device_flag, add_speed_flags
from training.losses import LOSSES
from training.schedule import SCHEDULES

# numpy's and torch's generators both take seeds up to 2**32 - 1 (numpy's legacy one no more).
MAX_SEED = 2**32 - 1
DEFAULT_IM_SIZE = 256  # -p when neither given nor taken from a --start-from checkpoint


@dataclass(frozen=True)
class TrainConfig:
    """Every run.py flag, by its long name; build_parser holds their defaults and help."""

    datapath: str
    epochs: int
    batch_size: int
    im_size: int | None  # None only with --start-from until its checkpoint gives the size
    learning_rate: float
    lr_schedule: str
    load: str | None
    start_from: str | None
    validation: float
    output_path: str
    overwrite: bool
    seed: int
    device: str
    workers: int
    augment: bool
    loss: str
    num_filters: int | None
    kernel: int | None
    se: str | None
    dropout: float | None
    input_norm: str | None
    time_stretch: int | None
    precision: str
    channels_last: bool | None  # None: the device's faster one
    compile: bool
    cache_limit: float
    save_every: int
    tensorboard: bool

    @property
    def output(self) -> Path:
        return Path(self.output_path)

    @property
    def checkpoint_path(self) -> Path | None:
        """The checkpoint that -f resumes or --start-from starts from; None for a fresh run."""
        path = self.load if self.load is not None else self.start_from
        return Path(path) if path is not None else None

    @property
    def load_path(self) -> Path | None:
        """-f's checkpoint: the one run that this run continues, if any."""
        return Path(self.load) if self.load is not None else None

    def model_settings(self, default_input_norm: str | None = None) -> dict[str, Any]:
        """The model flags as QuickNAT params; an --input-norm not given is
        default_input_norm (None: the checkpoint's, or QuickNAT's "unit")."""
        input_norm = self.input_norm or default_input_norm
        return model_settings(
            self.num_filters, self.kernel, self.se, self.dropout, input_norm, self.time_stretch
        )

    def check(self) -> None:
        """Raise SetupError for flag values that cannot work."""
        if not 0 < self.validation < 100:
            raise SetupError(
                f"-v must be between 0 and 100 (percent held out), got {self.validation:g}."
            )
        for flag, value in (("-e", self.epochs), ("-b", self.batch_size)):
            if value < 1:
                raise SetupError(f"{flag} must be at least 1, got {value}.")
        if self.load is not None and self.start_from is not None:
            raise SetupError(
                "-f resumes a run and --start-from starts a new one from a checkpoint's "
                "weights; pass only one of them."
            )
        if self.im_size is not None:
            self._check_im_size()
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise SetupError(f"-l must be a finite positive number, got {self.learning_rate:g}.")
        if not 0 <= self.seed <= MAX_SEED:
            raise SetupError(
                f"--seed must be a whole number from 0 to {MAX_SEED}, got {self.seed}."
            )
        if self.workers < 0 or self.save_every < 0 or self.cache_limit < 0:
            raise SetupError("--workers, --save-every and --cache-limit must be 0 or more.")

    def _check_im_size(self) -> None:
        if self.im_size < 32 or self.im_size % 16:
            raise SetupError(
                f"-p must be a multiple of 16 and at least 32 (QuickNAT pools 4 times), "
                f"got {self.im_size}; try {max(32, round(self.im_size / 16) * 16)}."
            )
        if self.im_size > MAX_WINDOW_PX:
            raise SetupError(
                f"-p must be at most {MAX_WINDOW_PX} pixels, got {self.im_size}; windows of "
                "128-512 px are plenty for M-mode."
            )
        stretch = self.time_stretch or 1
        if self.im_size**2 * stretch > MAX_WINDOW_PX**2:  # the memory of the same cap
            largest = int(MAX_WINDOW_PX / stretch**0.5) // 16 * 16
            raise SetupError(
                f"-p {self.im_size} with --time-stretch {stretch} makes windows of "
                f"{self.im_size} x {self.im_size * stretch} pixels, beyond the memory of a "
                f"{MAX_WINDOW_PX} px square; use -p {largest} or less."
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resume_command(self, checkpoint: Path, epochs: int) -> str:
        """The run.py command that continues this run exactly from `checkpoint`."""
        # A --start-from run resumes as any other: from its own checkpoint, with -f alone.
        resumed = dataclasses.replace(
            self, load=str(checkpoint), start_from=None, epochs=epochs, overwrite=False
        )
        parts = ["python run.py"]
        for action in build_parser()._actions:
            value = getattr(resumed, action.dest, None)
            if not action.option_strings or value is None:
                continue
            flag = min(action.option_strings, key=len)
            if isinstance(action, argparse.BooleanOptionalAction):
                parts.append(flag if value else f"--no-{flag[2:]}")
            elif action.nargs == 0:  # a switch such as --augment
                parts += [flag] if value else []
            else:
                parts.append(f"{flag} {shlex.quote(str(value))}")
        return " ".join(parts)


# A new model normalises each image by its grey-level ranks, so that it measures a recording
# the same whatever the scanner's gain, gamma and contrast (mmode.tensors.normalise_input).
TRAINED_INPUT_NORM = "rank"

# Measured by bench.model_sizes: the size to train on a CPU without a GPU.
CPU_MODEL_FLAGS = "-p 128 --num-filters 32 --kernel 5"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run.py",
        description="Train QuickNAT to segment the left-ventricle inner diameter in M-mode "
        "echocardiogram windows (with DATA/labels.json, every class it names: septum, cavity, "
        "posterior wall). Checkpoints, metrics.csv and curves.png go to -o.",
        epilog=f"On a CPU without a GPU, train with {CPU_MODEL_FLAGS}: on held-out recordings "
        "it measured hearts as well as the default model after the same steps, training 3.4x "
        "and measuring 2.2x faster (bench/RESULTS.md, Model sizes).",
    )
    p.add_argument("-d", "--datapath", required=True, help="data folder holding img/ and mask/")
    p.add_argument(
        "-e",
        "--epochs",
        type=int,
        default=1,
        help="epochs to train; on resume, epochs more (default: %(default)s)",
    )
    p.add_argument(
        "-b", "--batch-size", type=int, default=1, help="images per batch (default: %(default)s)"
    )
    p.add_argument(
        "-p",
        "--im-size",
        type=int,
        default=None,  # parse_config fills in DEFAULT_IM_SIZE, unless --start-from gives it
        help="images are resized to P x P (P x KP with --time-stretch K), a multiple of 16; "
        f"with --start-from, the checkpoint's size (default: {DEFAULT_IM_SIZE})",
    )
    p.add_argument(
        "-l",
        "--learning-rate",
        type=float,
        default=0.001,
        help="Adam learning rate; the peak of --lr-schedule (default: %(default)s)",
    )
    p.add_argument(
        "--lr-schedule",
        choices=SCHEDULES,
        default="constant",
        help="constant; poly or cosine: a short warm-up to -l, then decay to 0 over the "
        "run's epochs (default: %(default)s)",
    )
    p.add_argument(
        "-f",
        "--load",
        default=None,
        help="our checkpoint to resume exactly (same data, split and optimizer), or another "
        "tool's QuickNAT weights to start from (default: none)",
    )
    p.add_argument(
        "--start-from",
        default=None,
        metavar="CHECKPOINT",
        help="start a new run on -d from this checkpoint's weights, taking its model settings, "
        "classes and -p: a fresh split, optimizer and epoch count, to fine-tune on new data "
        "(default: none)",
    )
    p.add_argument(
        "-v",
        "--validation",
        type=float,
        default=20.0,
        help="percent of the data held out for validation (default: %(default)s)",
    )
    p.add_argument(
        "-o", "--output-path", default="./checkpoints", help="output folder (default: %(default)s)"
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace the checkpoints of an earlier run in -o"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for the split, weights and batches (default: %(default)s)",
    )
    add_device_flag(p)
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="DataLoader worker processes; helps only when streaming (default: %(default)s)",
    )
    p.add_argument(
        "--augment",
        action="store_true",
        help="random time flips, shifts, scaling, gamma, contrast, noise (default: off)",
    )
    p.add_argument(
        "--loss",
        choices=LOSSES,
        default="bce",
        help="training loss for binary masks (default: %(default)s); label masks "
        "(DATA/labels.json) always train with softmax cross-entropy plus soft Dice over the "
        "foreground classes",
    )
    add_model_flags(p, "QuickNAT (a checkpoint of this tool brings its own)", TRAINED_INPUT_NORM)
    speed = add_speed_flags(p)
    speed.add_argument(
        "--compile", action="store_true", help="torch.compile the model (default: off)"
    )
    speed.add_argument(
        "--cache-limit",
        type=float,
        default=4.0,
        help="GB of resized data kept in memory; above it, stream from disk (default: %(default)s)",
    )
    p.add_argument(
        "--save-every",
        type=int,
        default=0,
        help="also keep epoch_N.pt every N epochs; 0: never (default: %(default)s)",
    )
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="also log to OUTPUT/tensorboard (needs the tensorboard package)",
    )
    return p


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    """The flags as a TrainConfig; argparse itself exits 2 on a malformed command line."""
    values = vars(build_parser().parse_args(argv))
    if values["im_size"] is None and values["start_from"] is None:
        values["im_size"] = DEFAULT_IM_SIZE
    return TrainConfig(**values)
