"""Constants and plain functions the tests share; the shared fixtures are in conftest.py.

Test modules import from here, never from each other.
"""

from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
# run.py flags for a model that trains in a blink: 32 px windows, 8 filters, 3x3 kernels.
TINY = ["-p", "32", "--num-filters", "8", "--kernel", "3", "-b", "4"]


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def same_weights(a: dict, b: dict) -> bool:
    """Whether two checkpoints hold bit-identical network weights."""
    sa, sb = a["net_state_dict"], b["net_state_dict"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def exact_model(batch: torch.Tensor) -> torch.Tensor:
    """Stands in for a perfect network: the window is its own mask (logits +-10)."""
    return (batch > 0.5).float() * 20 - 10
