"""Turn recordings and annotations into training windows, and simulate recordings.

Commands (run from the repository root):

    python -m preprocessing.make_masks    recordings + annotations -> full-length masks
    python -m preprocessing.make_windows  recordings + masks -> DATA/img, DATA/mask windows
    python -m preprocessing.make_dataset  both steps in one, ready for `run.py -d DATA`
    python -m preprocessing.dicom_to_png  multi-frame ultrasound DICOM -> one long PNG
    python -m preprocessing.synthetic     simulated recordings with known traces

Conventions shared by all commands:
- A folder that does not exist, a flag without its partner, and other usage errors end the
  command at once: one sentence on stderr naming the problem and the fix, exit status 2.
- A problem with one recording (unreadable image, bad annotation, output already there
  without --overwrite, ...) skips that recording only; all of them are listed at the end
  and the command exits with status 1.
- Outputs are written atomically (runtime.files) and never replaced without --overwrite.
- Two-border annotations (upper, lower) give binary masks; four-border ones (ivs_top,
  upper, lower, lvpw_bottom) give label masks and labels.json (label_masks.py). A run or a
  folder holds one kind only.
"""
