"""Precise batch norm: running statistics recomputed for the current weights.

With few steps per epoch, batch norm's running mean and variance (momentum 0.1, starting
at 0 and 1) lag far behind the weights, and a model evaluated with them can score Dice 0
while its weights are good. So before every validation and checkpoint the statistics are
recomputed: a pass without gradients over up to PRECISE_BN_IMAGES training images, batch
norm in training mode with a cumulative average, dropout off (as at inference), no
augmentation and no draw from the global random generator, so that resuming stays exact.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from runtime.hardware import autocast

PRECISE_BN_IMAGES = 256  # a bounded cost: a forward pass of at most this many images


@torch.no_grad()
def recompute_statistics(
    model: nn.Module, batches: Iterable[torch.Tensor], device: torch.device, precision: str
) -> None:
    """Replace every batch norm's running statistics by their average over `batches`
    (float images ready for the model); the model is left in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # None: a cumulative average over the batches seen
    model.eval()
    for norm in norms:
        norm.train()
    try:
        for images in batches:
            with autocast(device, precision):
                model(images)
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        model.eval()
