"""What test.py writes into -o, so that a new run never mixes with or silently replaces an
earlier one, and never touches a file it did not write.

The files a run owns (earlier_results):
- the folder files PER_FOLDER (summary.csv, per_mouse.csv, index.html, and a test set's
  metrics.json and per_image.csv), and a test set's overlays/worst_NN_NAME.png and
  overlays/first_NN_NAME.png;
- for each recording it measured, NAME_mask.png, NAME_overlay.png, ... (PER_RECORDING) and
  the annotations it exported, annotations/csv/NAME.csv and annotations/labelme/NAME.json.
  The recordings it measured are those with a NAME_summary.json that test.py wrote (it
  holds SUMMARY_KEYS): a recording's summary is written last, once its other files are.
Any other file or folder in -o is the user's and stays. Without --overwrite a folder
holding earlier results is refused; with it they are removed first (all of them, so that
nothing stale is left), except that an exported annotation changed since the run (newer
than its recording's summary and index.html, i.e. corrected in LabelMe) is refused, and so
is any file this run would write that an earlier run did not. While a run writes, it holds
the folder's lock (runtime.files.lock_folder).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from runtime import files
from runtime.errors import SetupError

PER_RECORDING = ("mask.png", "overlay.png", "lvid.csv", "beats.csv", "summary.json", "report.png")
PER_FOLDER = ("summary.csv", "per_mouse.csv", "index.html", "metrics.json", "per_image.csv")
ANNOTATIONS_FOLDER = "annotations"  # csv/ and labelme/, see measurement/annotation_export.py
ANNOTATION_FILES = (("csv", ".csv"), ("labelme", ".json"))  # (subfolder, suffix) per NAME
OVERLAYS_FOLDER = "overlays"
OVERLAY_NAME = re.compile(r"(worst|first)_\d{2}_.+\.png")
SUMMARY_SUFFIX = "_summary.json"
SUMMARY_KEYS = ("n_beats", "n_beats_accepted", "volume_formula")  # in every NAME_summary.json
REVIEW_PAGE = "index.html"


def recording_files(out: Path, name: str) -> list[Path]:
    """A measured recording's own files in `out`, its summary last (see measure_recording)."""
    return [out / f"{name}_{kind}" for kind in PER_RECORDING if kind != "summary.json"] + [
        out / f"{name}{SUMMARY_SUFFIX}"
    ]


def annotation_files(out: Path, name: str) -> list[Path]:
    """The annotation files test.py exports for a recording (annotation_export)."""
    return [out / ANNOTATIONS_FOLDER / sub / f"{name}{suffix}" for sub, suffix in ANNOTATION_FILES]


def measured_names(folder: Path) -> list[str]:
    """The recordings an earlier test.py run measured into `folder`: the names of the
    NAME_summary.json files it wrote (a recording's resolution sidecar has other keys)."""
    names = []
    for path in sorted(folder.glob(f"*{SUMMARY_SUFFIX}")):
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(content, dict) and all(key in content for key in SUMMARY_KEYS):
            names.append(path.name.removesuffix(SUMMARY_SUFFIX))
    return names


def earlier_results(out: Path) -> list[Path]:
    """The files earlier test.py runs wrote in `out` (see the module's docstring)."""
    if not out.is_dir():
        return []
    found = [out / name for name in PER_FOLDER]
    for name in measured_names(out):
        found += recording_files(out, name) + annotation_files(out, name)
    overlays = out / OVERLAYS_FOLDER
    if overlays.is_dir():
        found += [p for p in sorted(overlays.iterdir()) if OVERLAY_NAME.fullmatch(p.name)]
    return [path for path in found if path.is_file() and not path.is_symlink()]


def edited_annotations(out: Path, earlier: list[Path]) -> list[Path]:
    """The exported annotations among `earlier` changed since their run wrote them: newer
    than both their recording's summary (written after them) and the review page (written
    at the run's end)."""
    page = out / REVIEW_PAGE
    edited = []
    for path in earlier:
        if path.parent.parent != out / ANNOTATIONS_FOLDER:
            continue
        summary = out / f"{path.stem}{SUMMARY_SUFFIX}"
        written = [p.stat().st_mtime_ns for p in (summary, page) if p.is_file()]
        if not written or path.stat().st_mtime_ns > max(written):
            edited.append(path)
    return edited


def planned_files(out: Path, inputs: list[Path], export_annotations: bool) -> list[Path]:
    """The per-recording files this run will write for the recordings `inputs`."""
    planned = []
    for path in inputs:
        planned += recording_files(out, path.stem)
        if export_annotations:
            planned += annotation_files(out, path.stem)
    return planned


def check_output(
    out: Path, overwrite: bool, inputs: list[Path], export_annotations: bool
) -> list[Path]:
    """The earlier results that this run replaces; SetupError for an -o this run may not
    write into as asked."""
    earlier = earlier_results(out)
    owned = {path.resolve() for path in earlier}
    taken = next((path for path in inputs if path.resolve() in owned), None)
    if taken is not None:
        raise SetupError(
            f"{taken} is a result of an earlier run in -o {out}, which this run would replace; "
            "copy the recordings to measure out of it first, or choose another folder with -o."
        )
    planned = planned_files(out, inputs, export_annotations)
    foreign = next((p for p in planned if p.exists() and p.resolve() not in owned), None)
    if foreign is not None:
        raise SetupError(
            f"{foreign} is not a result of an earlier test.py run, but this run would write "
            "it; move it away, or choose another folder with -o."
        )
    if earlier and not overwrite:
        raise SetupError(
            f"-o {out} holds the results of an earlier run (e.g. {earlier[0].name}); pass "
            "--overwrite to replace them, or choose another folder with -o."
        )
    edited = edited_annotations(out, earlier)
    if edited:
        more = f" (and {len(edited) - 1} more)" if len(edited) > 1 else ""
        raise SetupError(
            f"{edited[0]}{more} changed after test.py exported it, and --overwrite would "
            "delete the correction; move it away (e.g. to train on it), or choose another "
            "folder with -o."
        )
    return earlier


def claim_output(
    out: Path, overwrite: bool, inputs: list[Path], export_annotations: bool = False
) -> files.FolderLock:
    """Make -o ready for this run, or SetupError: no other run in it, earlier results
    refused (unless `overwrite`) or removed, no file of anyone else's replaced, the folder
    created and writable; its lock, to release at the end."""
    files.check_unlocked(out, "test.py", "-o")
    check_output(out, overwrite, inputs, export_annotations)
    files.make_output_folder(out, "-o")

    def check_and_clear() -> None:  # under the lock: no other run is writing what this removes
        earlier = check_output(out, overwrite, inputs, export_annotations)
        files.remove_files(earlier, result_folders(out, earlier))

    return files.lock_and_check(out, "test.py", "-o", check_and_clear)


def result_folders(out: Path, paths: list[Path]) -> list[Path]:
    """The folders of test.py's that hold these files: overlays/, annotations/csv/, ...,
    and annotations/ itself when one of its folders does."""
    folders = {path.parent for path in paths if path.parent != out}
    if any(folder.parent.name == ANNOTATIONS_FOLDER for folder in folders):
        folders.add(out / ANNOTATIONS_FOLDER)
    return sorted(folders)
