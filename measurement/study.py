"""Measure a folder of recordings: each recording's files (measurement.recordings), then
summary.csv (for a folder), per_mouse.csv (with subjects) and index.html, the review page.

A study is hundreds of recordings, so the work is spread:
- With workers > 1 this process reads each recording and runs the network on it, and
  worker processes do the steps after it (edges, beats, quality, the files, report.png),
  so that one recording is drawn while the network runs on the next. Results are taken in
  the recordings' order: the outputs are the same, byte for byte, for any number of
  workers.
- Under torchrun each process measures every WORLD_SIZE-th recording, and rank 0 writes
  the folder's files once all have finished.

A recording that fails is reported and skipped; the others are measured (exit status 1).
A file that cannot be written (a full disk, a read-only folder) stops the command at once:
every later recording would fail the same way. On Ctrl-C or SIGTERM (a cluster's time
limit) the recordings being written finish and none is left half-written; in one process
summary.csv, per_mouse.csv and index.html are written for those finished (exit status 130).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch.distributed as dist
from tqdm import tqdm

from measurement.inference import Model
from measurement.recordings import (
    SUMMARY_FIELDS,
    Measured,
    Measuring,
    finish_complete,
    measure_complete,
    segment,
)
from measurement.report import summary_line
from measurement.review import write_review_page
from measurement.subjects import Subjects, write_per_mouse
from runtime import files
from runtime.distributed import distributed_rank, is_main_process
from runtime.errors import RecordingError, WriteError

# Segmented recordings waiting per worker: enough that no worker waits for the network,
# few enough that memory stays bounded (each holds its probability map, a few MB).
QUEUED_PER_WORKER = 2


def default_workers() -> int:
    """The CPU cores this process may use, shared among torchrun's processes on a machine."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows
        cores = os.cpu_count() or 1
    return max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", 1)))


@dataclass
class Share:
    """The recordings one process measured, in their order, and how it ended."""

    rows: list[dict] = field(default_factory=list)  # as in summary.csv
    measured: list[Measured] = field(default_factory=list)
    stopped: WriteError | None = None  # a file could not be written: the command stops
    stopped_rank: int = 0  # the process that could not write it
    interrupted: bool = False

    @property
    def failed(self) -> int:
        """Its recordings that failed: unreadable, or measured without an accepted beat."""
        return sum(row["status"] == "failed" for row in self.rows)

    def add(self, path: Path, outcome: Measured | Exception, model: str | None) -> None:
        """Keep one recording's outcome (its result, or the error that failed it) and print it."""
        if isinstance(outcome, Exception):
            self.rows.append(
                {"name": path.stem, "status": "failed", "error": str(outcome), "model": model}
            )
            tqdm.write(f"error: {outcome}", file=sys.stderr)
            return
        for warning in outcome.warnings:
            tqdm.write(f"warning: {warning}", file=sys.stderr)
        self.measured.append(outcome)
        self.rows.append(outcome.row())
        if outcome.problem:
            tqdm.write(f"error: {outcome.problem}", file=sys.stderr)
        else:
            tqdm.write(f"{outcome.name}: {summary_line(outcome.summary)}")


def measure_recordings(
    model: Model,
    recordings: list[Path],
    measuring: Measuring,
    out: Path,
    folder: bool,
    subjects: Subjects | None = None,
) -> int:
    """Measure each recording, then write the folder's files. The exit status."""
    rank, world, _ = distributed_rank()
    share = measure_share(model, recordings[rank::world], measuring, out)
    if world > 1:
        if share.interrupted:  # the others may be gone: torchrun stops the whole job
            print(
                f"error: interrupted; process {rank} of {world} left only complete "
                f"recordings in {out}; run again with --overwrite to measure them all.",
                file=sys.stderr,
            )
            return 130
        merged = gather_shares(share, rank, world)
        if merged is None:  # rank 0 writes the folder's files and talks
            return 0
        share = merged
    if share.stopped is not None:
        who = f"process {share.stopped_rank} of {world} stopped: " if world > 1 else ""
        print(f"error: {who}{share.stopped.advice('-o')}", file=sys.stderr)
        return 1
    listed = folder_file_names(folder, subjects)
    try:
        write_folder_files(out, share.rows, share.measured, folder, subjects, measuring.model)
    except WriteError as err:
        print(f"error: {err.advice('-o')}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"error: interrupted while writing {listed}; the recordings' own files are in "
            f"{out}: run again with --overwrite for {listed}.",
            file=sys.stderr,
        )
        return 130
    if share.interrupted:
        print(
            f"error: interrupted; the recordings measured so far ({len(share.rows)} of "
            f"{len(recordings)}) are in {out}, listed in {listed}; run again with --overwrite "
            "to measure them all.",
            file=sys.stderr,
        )
        return 130
    if measuring.model is not None:
        print(f"Model: {measuring.model}")
    # Each failure was printed as it happened; the count, not the list again.
    failures = f"; {share.failed} failed (named above)" if share.failed else ""
    print(f"Measured {len(recordings) - share.failed} of {len(recordings)} recording(s)"
          f"{failures}; results are in {out}, to review in {out / 'index.html'}.")  # fmt: skip
    return 1 if share.failed else 0


def measure_share(model: Model, recordings: list[Path], measuring: Measuring, out: Path) -> Share:
    """This process's recordings, measured in order, each one's files complete or absent."""
    share = Share()

    def keep(path: Path, outcome: Measured | Exception) -> None:
        share.add(path, outcome, measuring.model)
        bar.update()

    bar = tqdm(
        total=len(recordings), desc="recordings", unit="rec", file=sys.stderr,
        disable=not is_main_process(),
    )  # fmt: skip
    try:
        with bar, sigterm_as_interrupt():
            if measuring.workers > 1 and len(recordings) > 1:
                measure_in_workers(model, recordings, measuring, out, keep)
            else:
                for path in recordings:
                    keep(
                        path,
                        outcome_of(lambda path=path: measure_complete(model, path, measuring, out)),
                    )
    except WriteError as err:
        share.stopped, share.stopped_rank = err, distributed_rank()[0]
    except KeyboardInterrupt:
        share.interrupted = True
    return share


def outcome_of(step: Callable[[], Measured]) -> Measured | Exception:
    """A recording's result, or the error that failed it; a write error stops the command."""
    try:
        return step()
    except WriteError:
        raise
    except (RecordingError, OSError) as err:
        return err


Job = tuple[Path, "Future[Measured] | Exception"]  # a recording's work in a worker, or its error
Keep = Callable[[Path, "Measured | Exception"], None]  # takes each recording's outcome


def measure_in_workers(
    model: Model, recordings: list[Path], measuring: Measuring, out: Path, keep: Keep
) -> None:
    """`keep` each recording's outcome in order: the network runs here, the rest in
    `measuring.workers` worker processes. When this stops part-way (Ctrl-C, a write error) the
    recordings being written finish, those not begun are dropped, and the finished ones
    are kept too."""
    pending: deque[Job] = deque()
    pool = ProcessPoolExecutor(measuring.workers, worker_context(), initializer=start_worker)
    try:
        for path in recordings:
            try:
                job: Future[Measured] | Exception = pool.submit(
                    finish_complete, segment(model, path, measuring), measuring, out
                )
            except (RecordingError, OSError) as err:  # reading it: nothing was written
                job = err
            pending.append((path, job))
            # Take each result once it is there; wait only when the queue is full.
            while pending and (
                len(pending) > measuring.workers * QUEUED_PER_WORKER or finished(pending[0][1])
            ):
                keep(*take_oldest(pending))
        while pending:
            keep(*take_oldest(pending))
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        for path, job in pending:
            outcome = finished_outcome(job)
            if outcome is not None:
                keep(path, outcome)
        raise
    pool.shutdown(wait=True)


def take_oldest(pending: deque[Job]) -> tuple[Path, Measured | Exception]:
    """The first recording's outcome, waiting for it; it leaves the queue only once there,
    so that a Ctrl-C while waiting still finds it queued."""
    path, job = pending[0]
    outcome = job if isinstance(job, Exception) else outcome_of(job.result)
    pending.popleft()
    return path, outcome


def finished(job: Future | Exception) -> bool:
    return isinstance(job, Exception) or job.done()


def finished_outcome(job: Future | Exception) -> Measured | Exception | None:
    """A job's outcome if it ended by itself: its result or the error that failed its
    recording; None if it was dropped, interrupted or could not write (no files remain)."""
    if isinstance(job, Exception):
        return job
    if not job.done() or job.cancelled():
        return None
    try:
        return outcome_of(job.result)
    except BaseException:  # interrupted, or a write error: its files were removed
        return None


def worker_context() -> multiprocessing.context.BaseContext:
    """fork on Linux: a worker starts at once, with the modules already imported here (a
    spawned one imports torch again, seconds each); spawn elsewhere, where fork is unsafe
    (macOS) or missing (Windows)."""
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return multiprocessing.get_context(method)


def start_worker() -> None:
    """A worker leaves Ctrl-C and SIGTERM to the main process, which lets it finish the
    recording it is writing, so that none is left half-written."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a cluster's time limit, torchrun stopping a job) stops as Ctrl-C does."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def gather_shares(share: Share, rank: int, world: int) -> Share | None:
    """On rank 0 every process's share merged (merge_shares); None on the others."""
    shares: list | None = [None] * world if rank == 0 else None
    dist.gather_object(share, shares, dst=0)
    return merge_shares(shares) if shares is not None else None


def merge_shares(shares: list[Share]) -> Share:
    """One share from each process's, in the recordings' order (process r measured
    recordings r, r + world, ...); the first process that could not write is named."""
    merged = Share()
    for i in range(max(len(s.rows) for s in shares)):
        for s in shares:
            if i < len(s.rows):
                merged.rows.append(s.rows[i])
    merged.measured = [m for s in shares for m in s.measured]
    for rank, s in enumerate(shares):
        if s.stopped is not None:
            merged.stopped, merged.stopped_rank = s.stopped, rank
            break
    return merged


def folder_file_names(folder: bool, subjects: Subjects | None) -> str:
    """The folder files a run writes, as a message names them."""
    names = [*(["summary.csv"] if folder else []), *(["per_mouse.csv"] if subjects else [])]
    return " and ".join([", ".join(names), "index.html"] if names else ["index.html"])


def write_folder_files(
    out: Path,
    rows: list[dict],
    measured: list[Measured],
    folder: bool,
    subjects: Subjects | None,
    model: str | None = None,
) -> None:
    """summary.csv (for a folder), per_mouse.csv (with subjects) and index.html."""
    if folder:
        files.write_csv(out / "summary.csv", SUMMARY_FIELDS, rows)
    if subjects is not None:
        beats = {m.name: (m.beats, [j.accepted for j in m.judged]) for m in measured}
        write_per_mouse(out / "per_mouse.csv", subjects, beats, [row["name"] for row in rows])
    write_review_page(
        out / "index.html",
        rows,
        {m.name: m.beat_rows() for m in measured},
        out.resolve().name,
        model,
    )
