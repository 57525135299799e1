"""Train QuickNAT on DATA/img + DATA/mask: python run.py -d DATA -e 20 -b 4 -l 0.0001"""

from __future__ import annotations

import argparse
import sys

import torch.distributed as dist

from cli_flags import add_model_flags, add_speed_flags
from dataset import DataError
from hardware import SetupError
from metrics import LOSSES
from quicknat import CheckpointError
from trainer import NonFiniteLoss, is_main_process, prepare_training


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Train QuickNAT to segment the left-ventricle inner diameter in M-mode "
        "echocardiogram windows. Checkpoints, metrics.csv and curves.png go to -o.",
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
        default=256,
        help="images are resized to P x P, a multiple of 16 (default: %(default)s)",
    )
    p.add_argument(
        "-l",
        "--learning-rate",
        type=float,
        default=0.001,
        help="Adam learning rate (default: %(default)s)",
    )
    p.add_argument(
        "-f", "--load", default=None, help="checkpoint to resume or start from (default: none)"
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
    p.add_argument(
        "--device",
        default="auto",
        help="auto (cuda, then mps, then cpu), cuda, mps or cpu (default: %(default)s)",
    )
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
        "--loss", choices=LOSSES, default="bce", help="training loss (default: %(default)s)"
    )
    add_model_flags(p, "QuickNAT (a checkpoint of this tool brings its own)")
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
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Raise SetupError for flag values that cannot work."""
    if not 0 < args.validation < 100:
        raise SetupError(
            f"-v must be between 0 and 100 (percent held out), got {args.validation:g}."
        )
    for flag, value in (("-e", args.epochs), ("-b", args.batch_size)):
        if value < 1:
            raise SetupError(f"{flag} must be at least 1, got {value}.")
    if args.im_size < 32 or args.im_size % 16:
        raise SetupError(
            f"-p must be a multiple of 16 and at least 32 (QuickNAT pools 4 times), "
            f"got {args.im_size}; try {max(32, round(args.im_size / 16) * 16)}."
        )
    if not args.learning_rate > 0:
        raise SetupError(f"-l must be positive, got {args.learning_rate:g}.")
    if args.workers < 0 or args.save_every < 0 or args.cache_limit < 0:
        raise SetupError("--workers, --save-every and --cache-limit must be 0 or more.")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_args(args)
        trainer = prepare_training(args)
        return trainer.fit()
    except (SetupError, DataError, CheckpointError) as err:
        return fail(err, 2)
    except NonFiniteLoss as err:
        return fail(err, 1)
    except KeyboardInterrupt:  # before training started: nothing was written
        return fail("interrupted before training started; nothing was written.", 130)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def fail(err: Exception | str, code: int) -> int:
    if is_main_process():  # one message, not one per torchrun process
        print(f"error: {err}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
