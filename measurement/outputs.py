"""What test.py writes into -o, so that a new run never mixes with or silently replaces an
earlier one: without --overwrite a folder holding earlier results is refused, and with it
they are removed first (all of them, so that nothing stale is left), but nothing else.
While a run writes, it holds the folder's lock (runtime.files.lock_folder)."""

from __future__ import annotations

import shutil
from pathlib import Path

from runtime import files
from runtime.errors import SetupError

PER_RECORDING = ("mask.png", "overlay.png", "lvid.csv", "beats.csv", "summary.json", "report.png")
PER_FOLDER = ("summary.csv", "per_mouse.csv", "index.html", "metrics.json", "per_image.csv")
ANNOTATIONS_FOLDER = "annotations"  # csv/ and labelme/, see measurement/annotation_export.py
FOLDERS = (ANNOTATIONS_FOLDER, "overlays")


def earlier_results(out: Path, inputs: list[Path]) -> list[Path]:
    """The files and folders of earlier test.py runs in `out`, never one of `inputs`."""
    if not out.is_dir():
        return []
    keep = {path.resolve() for path in inputs}
    found = [
        path
        for path in sorted(out.iterdir())
        if path.name in PER_FOLDER
        or (path.name in FOLDERS and path.is_dir())
        or (path.is_file() and any(path.name.endswith(f"_{kind}") for kind in PER_RECORDING))
    ]
    return [path for path in found if path.resolve() not in keep]


def claim_output(out: Path, overwrite: bool, inputs: list[Path]) -> files.FolderLock:
    """Make -o ready for this run, or SetupError: no other run in it, earlier results
    refused (unless `overwrite`) or removed, the folder created and writable; its lock,
    to release at the end."""
    files.check_unlocked(out, "test.py", "-o")
    earlier = earlier_results(out, inputs)
    if earlier and not overwrite:
        raise SetupError(
            f"-o {out} holds the results of an earlier run (e.g. {earlier[0].name}); pass "
            "--overwrite to replace them, or choose another folder with -o."
        )
    files.make_output_folder(out, "-o")
    lock = files.lock_folder(out, "test.py", "-o")
    try:  # under the lock, so that no other run is writing what this removes
        for path in earlier_results(out, inputs):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    except BaseException:
        lock.release()
        raise
    return lock
