"""Train QuickNAT on DATA/img + DATA/mask: python run.py -d DATA -e 20 -b 4 -l 0.0001

With DATA/labels.json the masks are label masks, and the model gets one output channel per
class it names (training/classes.py): per-class Dice in metrics.csv, the names in the
checkpoint. The flags are defined in training/config.py (run.py -h lists them); training
itself is trainer.py.

Exit status: 0 done, 1 stopped part-way (the loss diverged, or a file could not be written:
the last good checkpoints are kept; a streamed file changed or became unreadable:
interrupted.pt is written, to resume from once the file is back), 2 a problem with the
flags, data, checkpoint or output folder (nothing written), 130/143 stopped by
Ctrl-C/SIGTERM (interrupted.pt written once training has started).
"""

from __future__ import annotations

import sys

INTERRUPTED = "interrupted before training started; nothing was written."

try:  # importing torch takes seconds: a Ctrl-C then is an answer, not a traceback
    from dataset import DataError, FileChanged
    from quicknat import CheckpointError
    from runtime.distributed import is_main_process, stop_processes
    from runtime.errors import SetupError, WriteError
    from trainer import prepare_training
    from training.config import parse_config
    from training.losses import NonFiniteLoss
except KeyboardInterrupt:
    print(f"error: {INTERRUPTED}", file=sys.stderr)
    sys.exit(130)


def main(argv: list[str] | None = None) -> int:
    config = parse_config(argv)
    try:
        return prepare_training(config).run_training()
    except FileChanged as err:  # while training: a DataError, but interrupted.pt is saved
        return fail(err, 1)
    except (SetupError, DataError, CheckpointError) as err:
        return fail(err, 2)
    except WriteError as err:  # a full disk or read-only folder while training
        return fail(err.advice("-o"), 1)
    except NonFiniteLoss as err:
        return fail(err, 1)
    except KeyboardInterrupt:  # before training started: nothing was written
        return fail(INTERRUPTED, 130)
    finally:
        stop_processes()


def fail(err: Exception | str, code: int) -> int:
    if is_main_process():  # one message, not one per torchrun process
        print(f"error: {err}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
