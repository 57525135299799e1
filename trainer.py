"""Training: set-up checks, then the epoch loop over named steps.

`prepare_training(config)` checks everything (flags, checkpoint, data, output folder)
before anything is written; `Trainer.run_training()` runs the epochs:

    for each epoch: train_epoch (train_step per batch) -> validate (validation_step per
    batch) -> end_epoch (checkpoints and the other outputs, in training/outputs.py)

Under torchrun every process runs this loop on its share of the batches;
DistributedDataParallel averages the gradients, metrics are summed over all processes,
and only rank 0 prints and writes files.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from dataset import CachedData, FileChanged, make_dataset
from mmode.timescale import cut_as
from quicknat import Progress, QuickNat, TrainingCheckpoint, is_ours, read_checkpoint
from quicknat.flags import model_config
from runtime.distributed import (
    distributed_rank,
    process_device,
    say,
    share_buffers,
    start_processes,
    sum_over_processes,
    warn,
)
from runtime.hardware import autocast, memory_format, pick_device, pick_precision
from training import resume
from training.batchnorm import PRECISE_BN_IMAGES, recompute_statistics
from training.classes import class_settings, run_classes
from training.config import TRAINED_INPUT_NORM, TrainConfig
from training.data import (
    batch_loader,
    batch_to_device,
    choose_split,
    data_window_s,
    epoch_batches,
    in_batches,
    keep_on_device,
    load_data,
)
from training.losses import LossWatch, add_scores, metric_names, segmentation_loss
from training.outputs import RunOutputs, check_output_folder
from training.schedule import LrPlan, plan_schedule
from training.stopping import Stopping

N_SAMPLES = 4  # validation images drawn in samples/epoch_NNN.png
LOG_EVERY = 20  # steps between the progress bar's loss and the check for a non-finite loss


@dataclass
class TrainingSetup:
    """Where and how this process trains, and what a resumed run brings back."""

    device: torch.device
    precision: str
    rank: int
    world: int
    progress: Progress
    lr_plan: LrPlan | None = None  # set once the checkpoint is read
    rng_state: dict | None = None
    scaler_state: dict | None = None
    started_from: str | None = None  # the --start-from checkpoint, kept on through resumes
    window_s: float | None = None  # how -d's windows were cut (mmode/timescale.py)


def prepare_training(config: TrainConfig) -> Trainer:
    """Check flags, checkpoint, data and output folder; build the Trainer. Writes nothing."""
    config.check()
    rank, world, _ = distributed_rank()
    device = process_device(pick_device(config.device))
    precision = pick_precision(config.precision, device)
    source = config.checkpoint_path
    checkpoint = read_checkpoint(source) if source is not None else None
    our_checkpoint = (
        TrainingCheckpoint.from_dict(checkpoint, str(source)) if is_ours(checkpoint) else None
    )
    config = resume.start_config(config, our_checkpoint)  # -p settled for --start-from
    # --start-from takes only the model.
    resumed = our_checkpoint if config.load is not None else None
    # num_class: 1, or the labels of labels.json.
    labels = run_classes(config, our_checkpoint, source)
    # Our checkpoints (resumed or started from) bring their normalisation; others train rank.
    settings = config.model_settings(None if our_checkpoint is not None else TRAINED_INPUT_NORM)
    model_cfg = model_config(checkpoint, class_settings(settings, labels), warn)
    data = load_data(config, model_cfg.input_shape(config.im_size), labels)
    split = choose_split(config, data, resumed.split if resumed else None)
    progress = resumed.progress if resumed else None
    check_output_folder(config.output, config.overwrite, config.load_path, progress)
    torch.manual_seed(config.seed)
    model = QuickNat(model_cfg)
    # The fused kernel updates all parameters in one pass instead of ~10 ops per tensor.
    fused = device.type in ("cpu", "cuda")
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.learning_rate, betas=(0.9, 0.999), fused=fused
    )
    run = TrainingSetup(device, precision, rank, world, Progress(), window_s=data_window_s(config))
    if config.start_from is not None and our_checkpoint is not None:
        check_start_window_s(our_checkpoint.window_s, run.window_s, config.datapath)
    if config.start_from is not None:
        run.started_from = resume.load_start_weights(
            checkpoint, our_checkpoint, config.start_from, model
        )
    elif checkpoint is not None:
        run.progress = resume.restore_checkpoint(
            checkpoint,
            our_checkpoint,
            str(source),
            model,
            optimizer,
            config.learning_rate,
            config.im_size,
        )
        if our_checkpoint is not None:
            run.rng_state, run.scaler_state = our_checkpoint.rng_state, our_checkpoint.scaler
            run.started_from = resume.started_from(our_checkpoint)
    stored_plan = resumed.lr_plan if resumed is not None else None
    run.lr_plan = plan_schedule(
        config.lr_schedule, config.learning_rate, run.progress.epoch, config.epochs, stored_plan
    )
    start_processes(device)
    say(f"Training on {device} ({precision}), {world} process(es).")
    return Trainer(config, model, optimizer, data, split, run)


def check_start_window_s(started: float | None, data: float | None, datapath: str) -> None:
    """Warn where the data's windows span otherwise than the started-from model's did: the
    new model measures as its data was cut (mmode/timescale.py)."""
    if started != data:
        warn(
            f"{datapath}'s windows are cut {cut_as(data)}, but the model started from was "
            f"trained on windows cut {cut_as(started)}; to go on with the windows it "
            "knows, cut the data with make_dataset the same way."
        )


class Trainer:
    """The training loop; `run_training()` returns the process exit code."""

    def __init__(
        self,
        config: TrainConfig,
        model: QuickNat,
        optimizer: torch.optim.Optimizer,
        data: CachedData,
        split: dict,
        run: TrainingSetup,
    ) -> None:
        self.config = config
        self.run = run
        self.device = run.device
        self.is_main = run.rank == 0
        self.memory_format = memory_format(config.channels_last, self.device, run.precision)
        self.model = model.to(self.device, memory_format=self.memory_format)
        self.optimizer = optimizer
        resume.move_optimizer_state(optimizer, self.device)
        self.scaler = resume.grad_scaler(self.device, run.precision, run.scaler_state)
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
        self.compile_pending = config.compile
        if config.compile:
            self.net = torch.compile(self.net)
        self.split = split
        self.train_set = keep_on_device(make_dataset(data, split["train"]), self.device)
        self.val_set = keep_on_device(make_dataset(data, split["val"]), self.device)
        self.progress = run.progress
        self.labels, self.metrics = data.labels, metric_names(data.labels)
        self.last_epoch = self.progress.epoch + config.epochs
        self.stopping = Stopping(self.device, run.world)

    # ---- the loop -------------------------------------------------------------------
    def run_training(self) -> int:
        outputs = None
        if self.is_main:
            outputs = RunOutputs(self.config, self.split, self.progress)
        resume.seed_process(self.run.rng_state, self.config.seed, self.run.rank, self.progress)
        try:
            with self.stopping.catching_signals():
                return self._run_epochs(outputs)
        finally:
            if outputs is not None:
                outputs.close()

    def _run_epochs(self, outputs: RunOutputs | None) -> int:
        p = self.progress
        for epoch in range(p.epoch + 1, self.last_epoch + 1):
            started = time.perf_counter()
            train = self.train_epoch(epoch, p.step, p.partial if self.is_main else {})
            if not self.stopping.asked:
                val, samples = self.validate()
            if self.stopping.asked:
                return self._interrupt(epoch, train, outputs)
            row = {"epoch": epoch}
            row.update({f"train_{k}": train[k] / train["n"] for k in self.metrics})
            row.update({f"val_{k}": v for k, v in val.items()})
            row["lr"] = self.optimizer.param_groups[0]["lr"]
            row["seconds"] = round(time.perf_counter() - started, 3)
            self.end_epoch(row, samples, outputs)
        say(f"Done. Checkpoints, metrics.csv and curves.png are in {self.config.output}.")
        return 0

    def train_epoch(
        self, epoch: int, first_step: int = 0, partial: dict[str, float] | None = None
    ) -> dict[str, float]:
        """Train on this epoch's batches from `first_step` on (non-zero when resuming an
        interrupted epoch, whose summed metrics so far are `partial`); the metric sums."""
        self.model.train()
        batches = epoch_batches(self.train_set, epoch, self.run.world, self.run.rank, self.config)
        sums = dict.fromkeys(("n", *self.metrics), 0.0)
        sums.update(partial or {})
        bar = tqdm(
            self.stopping.batches(self._loader(self.train_set, batches[first_step:])),
            total=len(batches),
            initial=first_step,
            desc=f"epoch {epoch}",
            unit="batch",
            leave=False,
            file=sys.stderr,
            disable=not self.is_main,
        )
        watch = LossWatch(self.device)  # read only at logging points: a read waits
        for step, (images, masks) in enumerate(bar, start=first_step + 1):
            for group in self.optimizer.param_groups:
                group["lr"] = self.run.lr_plan.lr(epoch, step, len(batches))
            loss, logits, masks = self.train_step(images, masks)
            add_scores(sums, loss, logits, masks, self.labels)
            watch.note(loss, step)
            if step % LOG_EVERY == 0:
                watch.check(epoch, self.config.output)
                bar.set_postfix(loss=f"{float(sums['loss']) / sums['n']:.4f}")
            self.progress.step = step
        bar.close()
        watch.check(epoch, self.config.output)
        return sum_over_processes(sums, self.device)

    def train_step(
        self, images: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimizer step on a batch; (loss, logits, masks on the device)."""
        images, masks = self._to_device(images, masks, augment=self.config.augment)
        with autocast(self.device, self.run.precision):
            logits = self._forward(images)
        loss = segmentation_loss(logits, masks, self.config.loss)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss, logits, masks

    def _forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.compile_pending:
            return self.net(images)
        self.compile_pending = False
        try:
            return self.net(images)
        except Exception as err:  # noqa: BLE001 - any compiler failure means: go on eagerly
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            warn(f"--compile failed ({reason[:200]}); training goes on without it.")
            self.net = self.eager_net
            return self.net(images)

    def refresh_batch_norm(self) -> None:
        """Batch-norm statistics that fit the current weights (training/batchnorm.py).

        Every process averages over the same training images, so all get the same ones.
        """
        # Batches mixed as in training, from an own generator that leaves the global one be.
        order = torch.randperm(len(self.train_set), generator=torch.Generator().manual_seed(0))
        loader = self._loader(
            self.train_set, in_batches(order[:PRECISE_BN_IMAGES].tolist(), self.config.batch_size)
        )
        images = (self._to_device(x, masks, augment=False)[0] for x, masks in loader)
        recompute_statistics(self.model, images, self.device, self.run.precision)

    @torch.no_grad()
    def validate(self) -> tuple[dict[str, float], tuple]:
        """Mean validation metrics over all processes, and a few samples to draw.

        A file that no longer reads here stops the run as a signal would: interrupted.pt
        holds the whole epoch's training, and its resume validates again.
        """
        with self.stopping.reading():  # stops below, after the collectives all processes join
            self.refresh_batch_norm()
        self.model.eval()
        # Every process evaluates the weights rank 0 will save, batch-norm statistics included.
        share_buffers(self.model)
        share = list(range(self.run.rank, len(self.val_set), self.run.world))
        sums = dict.fromkeys(("n", *self.metrics), 0.0)
        samples = None
        with self.stopping.reading():
            # After a failed refresh, no validation pass: the run stops below anyway.
            batches = [] if self.stopping.asked else in_batches(share, self.config.batch_size)
            for images, masks in self._loader(self.val_set, batches):
                images, logits, masks = self.validation_step(images, masks, sums)
                if samples is None:
                    samples = tuple(t[:N_SAMPLES].float().cpu() for t in (images, masks, logits))
                if self.stopping.asked:
                    break
        if self.stopping.agreed():  # all processes together; _run_epochs then interrupts
            return {}, None
        sums = sum_over_processes(sums, self.device)
        return {k: sums[k] / sums["n"] for k in self.metrics}, samples

    def validation_step(
        self, images: torch.Tensor, masks: torch.Tensor, sums: dict[str, float]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Add one batch's metrics to `sums`; (images, logits, masks) on the device."""
        images, masks = self._to_device(images, masks, augment=False)
        with autocast(self.device, self.run.precision):
            logits = self.model(images)
        loss = segmentation_loss(logits, masks, self.config.loss)
        add_scores(sums, loss, logits, masks, self.labels)
        return images, logits, masks

    def _loader(self, dataset: torch.utils.data.Dataset, batches: list[list[int]]) -> Iterable:
        pin = self.device.type == "cuda"
        return batch_loader(dataset, batches, self.config.workers, self.config.seed, pin)

    def _to_device(self, images, masks, augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        return batch_to_device(images, masks, self.device, self.memory_format, augment)

    # ---- outputs ------------------------------------------------------------------
    def end_epoch(self, row: dict[str, float], samples: tuple, outputs: RunOutputs | None):
        p = self.progress
        p.epoch, p.step, p.partial = row["epoch"], 0, {}
        p.history.append(row)
        improved = row["val_dice"] > p.best_dice or (
            row["val_dice"] == p.best_dice and row["val_loss"] < p.best_loss
        )
        if improved:
            p.best_dice, p.best_loss, p.best_mse = row["val_dice"], row["val_loss"], row["val_mse"]
        if outputs is not None:
            every = self.config.save_every
            keep = bool(every) and row["epoch"] % every == 0
            outputs.end_epoch(self.checkpoint(), p.history, samples, improved, keep)

    def checkpoint(self) -> dict[str, Any]:
        """The run as it stands, as our checkpoint schema's plain dict."""
        return TrainingCheckpoint(
            config=self.model.config,
            state_dict={k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            im_size=self.config.im_size,
            optimizer=resume.optimizer_state_cpu(self.optimizer),
            progress=self.progress,
            split=self.split,
            args={**self.config.to_dict(), "start_from": self.run.started_from},
            rng_state=resume.get_rng_state(),
            scaler=self.scaler.state_dict() if self.scaler.is_enabled() else None,
            lr_plan=self.run.lr_plan.to_dict(),
            labels=self.labels,
            window_s=self.run.window_s,
        ).to_dict()

    def _interrupt(self, epoch: int, train_sums: dict[str, float], outputs) -> int:
        """Save interrupted.pt at the last completed step; the exit code of a signal, or
        FileChanged (run.py's exit 1) naming the file and how to resume."""
        self.progress.partial = dict(train_sums)
        if outputs is None:  # rank 0 saves and says why
            return self.stopping.exit_code()
        # Should a file fail here, training's own statistics: the next epoch recomputes them.
        with contextlib.suppress(FileChanged):
            self.refresh_batch_norm()
        path = outputs.interrupted(self.checkpoint())
        command = self.config.resume_command(path, self.last_epoch - epoch + 1)
        return self.stopping.report(f"in epoch {epoch}; saved {path}. Resume with:\n  {command}")
