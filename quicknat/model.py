"""The QuickNAT network (Roy et al., NeuroImage 2019), reduced to what M-mode needs."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mmode.tensors import normalise_input

from .blocks import ClassifierBlock, DecoderBlock, DenseBlock, EncoderBlock
from .config import QuickNatConfig


class QuickNat(nn.Module):
    """Four dense encoder blocks, a dense bottleneck, four dense decoder blocks, 1x1 classifier.

    `params` is the ai-med params dict (it is not modified) or a QuickNatConfig.
    Returns logits; apply a sigmoid (one class) or softmax (several) outside.
    """

    def __init__(self, params: dict[str, Any] | QuickNatConfig | None = None) -> None:
        super().__init__()
        if params is None:
            params = QuickNatConfig()
        cfg = params if isinstance(params, QuickNatConfig) else QuickNatConfig.from_dict(params)
        self.config = cfg
        f = cfg.num_filters
        self.encode1 = EncoderBlock(cfg, cfg.num_channels)
        self.encode2 = EncoderBlock(cfg, f)
        self.encode3 = EncoderBlock(cfg, f)
        self.encode4 = EncoderBlock(cfg, f)
        self.bottleneck = DenseBlock(cfg, f)
        self.decode1 = DecoderBlock(cfg, 2 * f)
        self.decode2 = DecoderBlock(cfg, 2 * f)
        self.decode3 = DecoderBlock(cfg, 2 * f)
        self.decode4 = DecoderBlock(cfg, 2 * f)
        self.classifier = ClassifierBlock(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.config)
        x = normalise_input(x, self.config.input_norm)
        e1, skip1, ind1 = self.encode1(x)
        e2, skip2, ind2 = self.encode2(e1)
        e3, skip3, ind3 = self.encode3(e2)
        e4, skip4, ind4 = self.encode4(e3)
        bottom = self.bottleneck(e4)
        # The decoders run in the order 4, 1, 2, 3: the original's naming, which
        # published weights depend on.
        d = self.decode4(bottom, skip4, ind4)
        d = self.decode1(d, skip3, ind3)
        d = self.decode2(d, skip2, ind2)
        d = self.decode3(d, skip1, ind1)
        return self.classifier(d)


def check_input(x: torch.Tensor, cfg: QuickNatConfig) -> None:
    """Raise ValueError for an input QuickNAT cannot take, saying which sizes work."""
    if x.dim() != 4 or x.shape[1] != cfg.num_channels:
        raise ValueError(
            f"QuickNAT expects a batch of shape (N, {cfg.num_channels}, H, W), "
            f"got {tuple(x.shape)}."
        )
    m = cfg.size_multiple
    h, w = x.shape[-2:]
    if h % m or w % m or h == 0 or w == 0:
        raise ValueError(
            f"QuickNAT needs height and width that are positive multiples of {m} "
            f"(pool {cfg.pool} applied 4 times), got {h}x{w}; "
            f"the nearest working size is {_round_up(h, m)}x{_round_up(w, m)} "
            "(or use quicknat.predict_logits, which pads and crops)."
        )


def _round_up(n: int, multiple: int) -> int:
    return max(multiple, -(-n // multiple) * multiple)


def predict_logits(model: QuickNat, x: torch.Tensor) -> torch.Tensor:
    """Logits for an input of any size: pad to the next valid size, then crop back."""
    m = model.config.size_multiple
    h, w = x.shape[-2:]
    pad_h, pad_w = _round_up(h, m) - h, _round_up(w, m) - w
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return model(x)[..., :h, :w]


def enable_test_dropout(model: nn.Module) -> None:
    """Keep dropout active at inference (Monte-Carlo dropout, as in Bayesian QuickNAT).

    Call after model.eval(): batch norm stays in eval mode, only dropout samples.
    """
    for module in model.modules():
        if isinstance(module, nn.Dropout2d):
            module.train()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
