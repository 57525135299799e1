"""QuickNAT for binary segmentation of M-mode echocardiograms.

Our own implementation of QuickNAT (Roy, Conjeti, Navab, Wachinger: "QuickNAT: A
fully convolutional network for quick and accurate segmentation of neuroanatomy",
NeuroImage 186, 2019), written to be weight-compatible with the ai-med QuickNAT
project (https://github.com/ai-med/quickNAT_pytorch, MIT licence): module names,
shapes and arithmetic match, so its checkpoints load with strict=True.
"""

from .checkpoint import (
    CheckpointError,
    choose_config,
    config_from_checkpoint,
    describe_mismatch,
    extract_state_dict,
    infer_config,
    load_weights,
    read_checkpoint,
)
from .config import SE_BLOCKS, QuickNatConfig
from .model import QuickNat, check_input, count_parameters, enable_test_dropout, predict_logits

__all__ = [
    "SE_BLOCKS",
    "CheckpointError",
    "QuickNat",
    "QuickNatConfig",
    "check_input",
    "choose_config",
    "config_from_checkpoint",
    "count_parameters",
    "describe_mismatch",
    "enable_test_dropout",
    "extract_state_dict",
    "infer_config",
    "load_weights",
    "predict_logits",
    "read_checkpoint",
]
