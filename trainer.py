"""Training: set-up checks, the epoch loop, metrics, plots and checkpoints.

`prepare_training(args)` checks everything (flags, checkpoint, data, output folder)
before anything is written; `Trainer.fit()` runs the epochs. Checkpoints hold only
plain data and load with `torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import shlex
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

import atomic_io
from cli_flags import load_checkpoint_weights, model_config, model_settings
from dataset import (
    CachedData,
    DataError,
    augment_batch,
    cache_bytes,
    collate_batch,
    find_pairs,
    load_pairs,
    make_dataset,
    split_names,
)
from hardware import (
    SetupError,
    autocast,
    distributed_rank,
    memory_format,
    pick_device,
    pick_precision,
)
from metrics import per_image_scores, segmentation_loss
from plots import save_curves, save_samples
from quicknat import (
    CheckpointError,
    QuickNat,
    read_checkpoint,
)

FORMAT_VERSION = 1
CHECKPOINT_NAMES = ("last.pt", "best.pt", "interrupted.pt")
METRICS = ("loss", "dice", "iou", "mse")
N_SAMPLES = 4  # validation images drawn in samples/epoch_NNN.png
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and step."""


@dataclass
class Progress:
    """Where a run stands; all of it is saved in every checkpoint."""

    epoch: int = 0  # completed epochs
    step: int = 0  # training steps done in epoch + 1 (non-zero only in interrupted.pt)
    partial: dict[str, float] = field(default_factory=dict)  # train sums of that partial epoch
    best_dice: float = -1.0
    best_loss: float = math.inf
    best_mse: float = math.inf
    history: list[dict[str, float]] = field(default_factory=list)


def is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a plain run: the one process that talks and writes."""
    return distributed_rank()[0] == 0


def _say(message: str) -> None:
    if is_main_process():
        print(message)


def _warn(message: str) -> None:
    if is_main_process():
        print(f"warning: {message}", file=sys.stderr)


def _check_output_folder(output: Path, args: Any, resuming_from: Path | None) -> None:
    if output.exists() and not output.is_dir():
        raise SetupError(f"output path {output} is a file; pass a folder with -o.")
    existing = [n for n in CHECKPOINT_NAMES if (output / n).exists()]
    inside = resuming_from is not None and resuming_from.parent.resolve() == output.resolve()
    if existing and not inside and not args.overwrite:
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


def prepare_training(args: Any) -> Trainer:
    """Check flags, checkpoint, data and output folder; build the Trainer. Writes nothing."""
    rank, world, local_rank = distributed_rank()
    device = pick_device(args.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    precision = pick_precision(args.precision, device)
    checkpoint, resume_path = None, None
    if args.load is not None:
        resume_path = Path(args.load)
        checkpoint = read_checkpoint(resume_path)
    ours = isinstance(checkpoint, dict) and "format_version" in checkpoint
    config = model_config(checkpoint if ours else None, model_settings(args), _warn)

    pairs = find_pairs(args.datapath)
    cache = cache_bytes(len(pairs), args.im_size) <= args.cache_limit * 1e9
    if not cache:
        _say(
            f"The resized data set needs {cache_bytes(len(pairs), args.im_size) / 1e9:.1f} GB, "
            f"more than --cache-limit {args.cache_limit:g} GB: streaming it from disk instead "
            "(more --workers help)."
        )
    data = load_pairs(pairs, args.im_size, keep=cache)
    for message in data.warnings:
        _warn(message)
    if ours and isinstance(checkpoint.get("split"), dict):
        split = _stored_split(checkpoint["split"], data, args.validation)
    else:
        split = {**split_names(data.names, args.validation, args.seed)}
        split.update(seed=args.seed, val_percent=args.validation)
    _check_output_folder(Path(args.output_path), args, resume_path)

    torch.manual_seed(args.seed)
    model = QuickNat(config)
    # The fused kernel updates all parameters in one pass instead of ~10 ops per tensor.
    fused = device.type in ("cpu", "cuda")
    optimizer = torch.optim.Adam(
        model.parameters(), lr=args.learning_rate, betas=(0.9, 0.999), fused=fused
    )
    progress, saved = Progress(), {}
    if checkpoint is not None:
        load_checkpoint_weights(model, checkpoint, str(resume_path))
        if ours:
            progress, saved = _restore(checkpoint, optimizer, args)
            _say(f"Resuming from {resume_path} after epoch {progress.epoch}.")
        else:
            loaded = _load_foreign_optimizer(checkpoint, optimizer, model)
            _say(f"Loaded weights{' and optimizer state' if loaded else ''} from {resume_path}.")
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    _say(f"Training on {device} ({precision}), {world} process(es).")
    run = Run(device, precision, rank, world, progress, saved.get("rng_state"), saved.get("scaler"))
    return Trainer(args, model, optimizer, data, split, run)


@dataclass
class Run:
    """Where and how this process trains, and what a resumed run brings back."""

    device: torch.device
    precision: str
    rank: int
    world: int
    progress: Progress
    rng_state: dict | None = None
    scaler_state: dict | None = None


def _stored_split(stored: dict, data: CachedData, val_percent: float) -> dict:
    names = set(data.names)
    missing = [n for n in stored["train"] + stored["val"] if n not in names]
    if missing:
        raise DataError(
            f"the data set has changed since the checkpoint: {len(missing)} pair(s) of its split "
            f"are gone ({', '.join(missing[:10])}); resume with the same data or start afresh."
        )
    new = len(names) - len(stored["train"]) - len(stored["val"])
    if new:
        _warn(f"{new} pair(s) not in the checkpoint's split are left out of this run.")
    if float(stored.get("val_percent", val_percent)) != float(val_percent):
        _say(f"Reusing the checkpoint's split ({stored.get('val_percent')}%); -v is ignored.")
    return stored


def _restore(checkpoint: dict, optimizer: torch.optim.Optimizer, args: Any) -> tuple:
    try:
        optimizer.load_state_dict(checkpoint["optimizer"])
        progress = Progress(**checkpoint["progress"])
        saved = {"rng_state": checkpoint["rng_state"], "scaler": checkpoint.get("scaler")}
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(
            f"{args.load} is an incomplete checkpoint of this tool ({err}); "
            "resume from another one or start afresh."
        ) from None
    for group in optimizer.param_groups:
        group["lr"] = args.learning_rate
    return progress, saved


def _load_foreign_optimizer(checkpoint: Any, optimizer: torch.optim.Optimizer, model) -> bool:
    state = checkpoint.get("optimizer") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        return False
    params = list(model.parameters())
    try:
        shapes_fit = all(
            t.shape == params[i].shape
            for i, s in state.get("state", {}).items()
            for t in s.values()
            if isinstance(t, torch.Tensor) and t.dim() > 0
        )
        if shapes_fit:
            fused = optimizer.param_groups[0].get("fused")
            optimizer.load_state_dict(state)
            for group in optimizer.param_groups:  # its moments, but this run's -l and kernel
                group["lr"], group["fused"] = optimizer.defaults["lr"], fused
            return True
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    _warn("the checkpoint's optimizer state does not fit this model; starting a fresh one.")
    return False


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    return value


class Trainer:
    """The training loop; `fit()` returns the process exit code.

    Under torchrun every process runs this loop on its share of the batches;
    DistributedDataParallel averages the gradients, metrics are summed over all
    processes, and only rank 0 prints and writes files.
    """

    def __init__(
        self,
        args: Any,
        model: QuickNat,
        optimizer: torch.optim.Optimizer,
        data: CachedData,
        split: dict,
        run: Run,
    ) -> None:
        self.args = args
        self.run = run
        self.device = run.device
        self.is_main = run.rank == 0
        self.memory_format = memory_format(args.channels_last)
        self.model = model.to(self.device, memory_format=self.memory_format)
        self.optimizer = optimizer
        _move_optimizer_state(optimizer, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=run.precision == "fp16")
        if run.scaler_state:
            self.scaler.load_state_dict(run.scaler_state)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.net: torch.nn.Module = self.model
        if run.world > 1:
            # The bottleneck's SE weights exist for checkpoint compatibility but are not
            # used (as in the original), which DDP must be told about.
            self.net = DistributedDataParallel(
                self.model, find_unused_parameters=self.model.config.se_block != "NONE"
            )
        self.eager_net = self.net
        self.compile_pending = bool(args.compile)
        if args.compile:
            self.net = torch.compile(self.net)
        self.split = split
        self.train_set = make_dataset(data, split["train"])
        self.val_set = make_dataset(data, split["val"])
        self.progress = run.progress
        self.output = Path(args.output_path)
        self.last_epoch = self.progress.epoch + args.epochs
        self.stop_signal: int | None = None
        self.tensorboard = None

    # ---- the loop -------------------------------------------------------------------
    def fit(self) -> int:
        if self.is_main:
            (self.output / "samples").mkdir(parents=True, exist_ok=True)
            atomic_io.write_text(self.output / "split.json", json.dumps(self.split, indent=1))
            self._open_tensorboard()
        if self.run.rng_state is not None:
            _set_rng_state(self.run.rng_state)
            if self.run.rank:
                # Only rank 0's state is saved; the others must not repeat its draws.
                torch.manual_seed(self.args.seed + self.run.rank + 7919 * self.progress.epoch)
        else:
            # Each process its own dropout and augmentation draws.
            torch.manual_seed(self.args.seed + self.run.rank)
        previous = {s: signal.signal(s, self._on_signal) for s in EXIT_CODES}
        try:
            return self._run_epochs()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            if self.tensorboard is not None:
                self.tensorboard.close()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stop_signal = signum

    def _run_epochs(self) -> int:
        for epoch in range(self.progress.epoch + 1, self.last_epoch + 1):
            started = time.perf_counter()
            train = self.train_epoch(epoch)
            if self.stop_signal is not None:
                return self._interrupt(epoch, train)
            val, samples = self._validate()
            if self.stop_signal is not None:
                return self._interrupt(epoch, train)
            row = {"epoch": epoch}
            row.update({f"train_{k}": train[k] / train["n"] for k in METRICS})
            row.update({f"val_{k}": v for k, v in val.items()})
            row["lr"] = self.optimizer.param_groups[0]["lr"]
            row["seconds"] = round(time.perf_counter() - started, 3)
            self._end_epoch(row, samples)
        _say(f"Done. Checkpoints, metrics.csv and curves.png are in {self.output}.")
        return 0

    def train_epoch_batches(self, epoch: int) -> list[list[int]]:
        """This process's batches for an epoch: a seeded shuffle, the same on every resume."""
        sampler = DistributedSampler(
            self.train_set, self.run.world, self.run.rank, shuffle=True, seed=self.args.seed
        )
        sampler.set_epoch(epoch)
        order, bs = list(sampler), self.args.batch_size
        return [order[i : i + bs] for i in range(0, len(order), bs)]

    def train_epoch(self, epoch: int) -> dict[str, float]:
        self.model.train()
        batches = self.train_epoch_batches(epoch)
        start = self.progress.step
        sums = dict.fromkeys(("n", *METRICS), 0.0)
        if self.is_main:  # partial sums are already summed over processes
            sums.update(self.progress.partial)
        bar = tqdm(
            self._loader(self.train_set, batches[start:]),
            total=len(batches),
            initial=start,
            desc=f"epoch {epoch}",
            unit="batch",
            leave=False,
            file=sys.stderr,
            disable=not self.is_main,
        )
        for step, (images, masks) in enumerate(bar, start=start + 1):
            images, masks = self._to_device(images, masks, augment=self.args.augment)
            with autocast(self.device, self.run.precision):
                logits = self._forward(images)
            loss = segmentation_loss(logits, masks, self.args.loss)
            (non_finite,) = self._agree(not torch.isfinite(loss))
            if non_finite:
                raise NonFiniteLoss(
                    f"the loss became {loss.item()} at epoch {epoch}, step {step}; the last good "
                    f"checkpoints in {self.output} are kept. Try a lower learning rate (-l)."
                )
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self._accumulate(sums, loss, logits, masks)
            bar.set_postfix(loss=f"{sums['loss'] / sums['n']:.4f}")
            self.progress.step = step
            # Stop between steps, so that the saved RNG state is the one the next step needs.
            if self._check_stop():
                break
        bar.close()
        return self._sum_over_processes(sums)

    def _forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.compile_pending:
            return self.net(images)
        self.compile_pending = False
        try:
            return self.net(images)
        except Exception as err:  # noqa: BLE001 - any compiler failure means: go on eagerly
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            _warn(f"--compile failed ({reason[:200]}); training goes on without it.")
            self.net = self.eager_net
            return self.net(images)

    @torch.no_grad()
    def _validate(self) -> tuple[dict[str, float], tuple]:
        self.model.eval()
        if self.run.world > 1:
            # Every process evaluates the weights rank 0 will save, batch-norm statistics included.
            for buffer in self.model.buffers():
                dist.broadcast(buffer, 0)
        order = list(range(self.run.rank, len(self.val_set), self.run.world))
        bs = self.args.batch_size
        sums = dict.fromkeys(("n", *METRICS), 0.0)
        samples = None
        batches = [order[i : i + bs] for i in range(0, len(order), bs)]
        for images, masks in self._loader(self.val_set, batches):
            images, masks = self._to_device(images, masks, augment=False)
            with autocast(self.device, self.run.precision):
                logits = self.model(images)
            loss = segmentation_loss(logits, masks, self.args.loss)
            self._accumulate(sums, loss, logits, masks)
            if samples is None:
                samples = tuple(t[:N_SAMPLES].float().cpu() for t in (images, masks, logits))
            if self.stop_signal is not None:
                break
        self._check_stop()
        sums = self._sum_over_processes(sums)
        return {k: sums[k] / sums["n"] for k in METRICS}, samples

    def _check_stop(self) -> bool:
        """Whether any process was asked to stop; then all of them stop."""
        (stop,) = self._agree(self.stop_signal is not None)
        if stop and self.stop_signal is None:
            self.stop_signal = signal.SIGTERM  # another process's
        return stop

    def _agree(self, *flags: bool) -> list[bool]:
        """Each flag, true if it is true in any process (so that all stop together)."""
        if self.run.world == 1:
            return list(flags)
        t = torch.tensor([float(f) for f in flags], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [bool(v) for v in t.tolist()]

    def _sum_over_processes(self, sums: dict[str, float]) -> dict[str, float]:
        if self.run.world == 1:
            return sums
        t = torch.tensor([sums[k] for k in sums], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return dict(zip(sums, t.tolist(), strict=True))

    def _loader(self, dataset: torch.utils.data.Dataset, batches: list[list[int]]) -> DataLoader:
        return DataLoader(
            dataset,
            batch_sampler=batches,
            num_workers=self.args.workers,
            collate_fn=collate_batch,
            pin_memory=self.device.type == "cuda",
            # Its own generator, so that loading never draws from the global RNG
            # that dropout and augmentation use: resumed runs stay exact.
            generator=torch.Generator().manual_seed(self.args.seed),
        )

    def _to_device(self, images, masks, augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if augment:  # on the CPU, per image
            images, masks = augment_batch(images.float().div_(255), masks)
        # Copy the (pinned, on CUDA) batch as it comes, a quarter of the bytes when uint8,
        # and convert on the device.
        non_blocking = self.device.type == "cuda"
        images = images.to(self.device, non_blocking=non_blocking)
        masks = masks.to(self.device, non_blocking=non_blocking).float()
        if images.dtype == torch.uint8:
            images = images.float().div_(255)
        return images.contiguous(memory_format=self.memory_format), masks

    @staticmethod
    def _accumulate(sums: dict, loss: torch.Tensor, logits: torch.Tensor, masks: torch.Tensor):
        n = logits.shape[0]
        scores = per_image_scores(logits.detach() > 0, masks > 0.5)
        sums["n"] += n
        sums["loss"] += loss.item() * n
        for k, v in scores.items():
            sums[k] += v.sum().item()

    # ---- outputs ------------------------------------------------------------------
    def _end_epoch(self, row: dict[str, float], samples: tuple) -> None:
        p = self.progress
        p.epoch, p.step, p.partial = row["epoch"], 0, {}
        p.history.append(row)
        improved = row["val_dice"] > p.best_dice or (
            row["val_dice"] == p.best_dice and row["val_loss"] < p.best_loss
        )
        if improved:
            p.best_dice, p.best_loss, p.best_mse = row["val_dice"], row["val_loss"], row["val_mse"]
        if not self.is_main:
            return
        checkpoint = self._checkpoint(row)
        atomic_io.torch_save(checkpoint, self.output / "last.pt")
        if improved:
            atomic_io.torch_save(checkpoint, self.output / "best.pt")
        if self.args.save_every and row["epoch"] % self.args.save_every == 0:
            atomic_io.torch_save(checkpoint, self.output / f"epoch_{row['epoch']}.pt")
        self._write_metrics_csv()
        save_curves(p.history, self.output / "curves.png")
        save_samples(*samples, self.output / "samples" / f"epoch_{row['epoch']:03d}.png")
        if self.tensorboard is not None:
            for key, value in row.items():
                if key != "epoch":
                    self.tensorboard.add_scalar(key, value, row["epoch"])
        tqdm.write(
            f"epoch {row['epoch']}: train loss {row['train_loss']:.4f} dice {row['train_dice']:.4f}"
            f" | val loss {row['val_loss']:.4f} dice {row['val_dice']:.4f} iou {row['val_iou']:.4f}"
            f" mse {row['val_mse']:.5f} | {row['seconds']:.1f}s" + (" | best" if improved else "")
        )

    def _checkpoint(self, row: dict[str, float] | None) -> dict[str, Any]:
        p = self.progress
        last = row or (p.history[-1] if p.history else {})
        checkpoint = {
            # The original tool's keys, so that its scripts can read our checkpoints.
            "epoch": p.epoch,
            "net_state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": _optimizer_state_cpu(self.optimizer),
            "loss": last.get("val_loss", math.nan),
            "dice": last.get("val_dice", math.nan),
            "mse": last.get("val_mse", math.nan),
            "best_dice": p.best_dice,
            "best_mse": p.best_mse,
            # Ours.
            "model_config": self.model.config.to_dict(),
            "args": {k: _plain(v) for k, v in vars(self.args).items()},
            "split": self.split,
            "history": p.history,
            "progress": {
                "epoch": p.epoch,
                "step": p.step,
                "partial": dict(p.partial),
                "best_dice": p.best_dice,
                "best_loss": p.best_loss,
                "best_mse": p.best_mse,
                "history": p.history,
            },
            "rng_state": _get_rng_state(),
            "format_version": FORMAT_VERSION,
        }
        if self.scaler.is_enabled():
            checkpoint["scaler"] = self.scaler.state_dict()
        return checkpoint

    def _interrupt(self, epoch: int, train_sums: dict[str, float]) -> int:
        self.progress.partial = dict(train_sums)
        code = EXIT_CODES[self.stop_signal]
        if not self.is_main:
            return code
        path = self.output / "interrupted.pt"
        atomic_io.torch_save(self._checkpoint(None), path)
        print(
            f"\nStopped by {signal.Signals(self.stop_signal).name} in epoch {epoch}; saved {path}. "
            f"Resume with:\n  {resume_command(self.args, path, self.last_epoch - epoch + 1)}",
            file=sys.stderr,
        )
        return code

    def _write_metrics_csv(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(self.progress.history[0]))
        writer.writeheader()
        writer.writerows(self.progress.history)
        atomic_io.write_text(self.output / "metrics.csv", buffer.getvalue())

    def _open_tensorboard(self) -> None:
        if not self.args.tensorboard:
            return
        if importlib.util.find_spec("tensorboard") is None:
            _warn("--tensorboard needs the tensorboard package (pip install tensorboard); "
                  "training goes on without it.")  # fmt: skip
            return
        from torch.utils.tensorboard import SummaryWriter

        self.tensorboard = SummaryWriter(log_dir=str(self.output / "tensorboard"))


def resume_command(args: Any, checkpoint: Path, epochs: int) -> str:
    """The run.py command that continues this run exactly (model flags come from the file)."""
    parts = [
        f"python run.py -d {shlex.quote(str(args.datapath))}",
        f"-o {shlex.quote(str(args.output_path))} -f {shlex.quote(str(checkpoint))} -e {epochs}",
        f"-b {args.batch_size} -p {args.im_size} -l {args.learning_rate} --seed {args.seed}",
        f"--loss {args.loss} --precision {args.precision} --device {args.device}",
    ]
    parts.append(f"--workers {args.workers} --cache-limit {args.cache_limit:g}")
    if args.save_every:
        parts.append(f"--save-every {args.save_every}")
    switches = {
        "--augment": args.augment,
        "--no-channels-last": not args.channels_last,
        "--compile": args.compile,
        "--tensorboard": args.tensorboard,
    }
    parts += [flag for flag, on in switches.items() if on]
    return " ".join(parts)


def _get_rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _optimizer_state_cpu(optimizer: torch.optim.Optimizer) -> dict:
    state = optimizer.state_dict()
    state["state"] = {
        i: {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in s.items()}
        for i, s in state["state"].items()
    }
    return state


def _move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimizer.state.values():
        for k, v in state.items():
            if isinstance(v, torch.Tensor) and k != "step":
                state[k] = v.to(device)
