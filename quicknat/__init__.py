"""QuickNAT for segmenting M-mode echocardiograms: the cavity alone, or every class of a
label mask (septum, cavity, posterior wall).

Our own implementation of QuickNAT (Roy, Conjeti, Navab, Wachinger: "QuickNAT: A
fully convolutional network for quick and accurate segmentation of neuroanatomy",
NeuroImage 186, 2019), written to be weight-compatible with the ai-med QuickNAT
project (https://github.com/ai-med/quickNAT_pytorch, MIT licence): module names,
shapes and arithmetic match, so its checkpoints load with strict=True.

Also here: its settings (config, flags), loading weights from any checkpoint
(checkpoint), and the schema of the checkpoints our trainer writes (schema).
"""

from .checkpoint import (
    CheckpointError,
    describe_mismatch,
    extract_state_dict,
    infer_config,
    load_weights,
    read_checkpoint,
)
from .config import SE_BLOCKS, QuickNatConfig
from .model import QuickNat, check_input, count_parameters, enable_test_dropout, predict_logits
from .schema import (
    FORMAT_VERSION,
    Progress,
    TrainingCheckpoint,
    choose_config,
    is_ours,
    stored_config,
    trained_im_size,
    trained_labels,
    trained_window_s,
)

__all__ = [
    "FORMAT_VERSION",
    "SE_BLOCKS",
    "CheckpointError",
    "Progress",
    "QuickNat",
    "QuickNatConfig",
    "TrainingCheckpoint",
    "check_input",
    "choose_config",
    "count_parameters",
    "describe_mismatch",
    "enable_test_dropout",
    "extract_state_dict",
    "infer_config",
    "is_ours",
    "load_weights",
    "predict_logits",
    "read_checkpoint",
    "stored_config",
    "trained_im_size",
    "trained_labels",
    "trained_window_s",
]
