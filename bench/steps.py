"""One training configuration's speed and start-up, in a process of its own.

    python -m bench.steps --epochs 3 -d DATA -p 256 -b 16 --device cuda [run.py's flags]

Prints one line of JSON: where the start-up goes (the device's context, the set-up: data
into memory and the model, the first epoch: cuDNN's choice of kernels, compilation)
against the steady epochs, and the training images/s of those. bench runs it once per
variant (precision, memory format, torch.compile, batch size) with a time limit, so that
a compilation that never ends costs only that limit.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time

import torch

from bench.limits import synchronize
from runtime.hardware import pick_device
from trainer import prepare_training
from training.config import parse_config


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3, help="the first, then steady (default: 3)")
    args, run_flags = p.parse_known_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        config = parse_config([*run_flags, "-o", out, "-e", str(args.epochs)])
        device = pick_device(config.device)
        torch.zeros(1, device=device)  # creates the device's context
        synchronize(device)
        context_s = time.perf_counter() - started
        trainer = prepare_training(config)
        synchronize(device)
        prepare_s = time.perf_counter() - started - context_s
        seconds, images = [], 0.0
        for epoch in range(1, args.epochs + 1):
            epoch_started = time.perf_counter()
            images = trainer.train_epoch(epoch)["n"]
            synchronize(device)
            seconds.append(time.perf_counter() - epoch_started)
    steady_s = statistics.median(seconds[1:]) if len(seconds) > 1 else seconds[0]
    result = {
        "context_s": context_s,
        "prepare_s": prepare_s,
        "first_epoch_s": seconds[0],
        "steady_epoch_s": steady_s,
        "images_per_epoch": images,
        "train_img_s": images / steady_s,
        "precision": trainer.run.precision,
        "channels_last": trainer.memory_format == torch.channels_last,
        "compiled": trainer.net is not trainer.eager_net,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
