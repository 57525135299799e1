"""QuickNAT's building blocks: dense, encoder and decoder blocks, squeeze-and-excitation.

Module and attribute names follow the ai-med QuickNAT code exactly, because
published weights are stored under those names.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import QuickNatConfig


class ChannelSE(nn.Module):
    """Channel squeeze-and-excitation (Hu et al. 2018), reduction ratio 2."""

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(num_channels, num_channels // 2)
        self.fc2 = nn.Linear(num_channels // 2, num_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = x.mean(dim=(2, 3))
        scale = torch.sigmoid(self.fc2(torch.relu(self.fc1(squeezed))))
        return x * scale[:, :, None, None]


class SpatialSE(nn.Module):
    """Spatial squeeze-and-excitation (Roy et al., MICCAI 2018)."""

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(num_channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(x))


class ChannelSpatialSE(nn.Module):
    """Concurrent spatial and channel SE: the elementwise max of both."""

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.cSE = ChannelSE(num_channels)
        self.sSE = SpatialSE(num_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.maximum(self.cSE(x), self.sSE(x))


def make_se(se_block: str, num_channels: int) -> nn.Module | None:
    layers = {"CSE": ChannelSE, "SSE": SpatialSE, "CSSE": ChannelSpatialSE}
    return layers[se_block](num_channels) if se_block in layers else None


class DenseBlock(nn.Module):
    """Three BN-PReLU-conv units, each fed the block input and all earlier outputs."""

    def __init__(self, cfg: QuickNatConfig, in_channels: int) -> None:
        super().__init__()
        f = cfg.num_filters
        kernel = (cfg.kernel_h, cfg.kernel_w)
        padding = ((cfg.kernel_h - 1) // 2, (cfg.kernel_w - 1) // 2)
        self.conv1 = nn.Conv2d(in_channels, f, kernel, padding=padding, stride=cfg.stride_conv)
        self.conv2 = nn.Conv2d(in_channels + f, f, kernel, padding=padding, stride=cfg.stride_conv)
        self.conv3 = nn.Conv2d(in_channels + 2 * f, f, 1, stride=cfg.stride_conv)
        self.batchnorm1 = nn.BatchNorm2d(in_channels)
        self.batchnorm2 = nn.BatchNorm2d(in_channels + f)
        self.batchnorm3 = nn.BatchNorm2d(in_channels + 2 * f)
        # One PReLU (one shared slope) for all three activations, as in the original.
        self.prelu = nn.PReLU()
        # The original builds an SE layer in every dense block, the bottleneck included,
        # but applies it only in encoder and decoder blocks; checkpoints carry its weights.
        self.SELayer = make_se(cfg.se_block, f)
        self.drop_out = nn.Dropout2d(cfg.drop_out) if cfg.drop_out > 0 else None

    def dense(self, x: torch.Tensor) -> torch.Tensor:
        o1 = self.conv1(self.prelu(self.batchnorm1(x)))
        o2 = self.conv2(self.prelu(self.batchnorm2(torch.cat((x, o1), dim=1))))
        return self.conv3(self.prelu(self.batchnorm3(torch.cat((x, o1, o2), dim=1))))

    def se_and_dropout(self, x: torch.Tensor) -> torch.Tensor:
        if self.SELayer is not None:
            x = self.SELayer(x)
        if self.drop_out is not None:
            x = self.drop_out(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x)


class EncoderBlock(DenseBlock):
    """Dense block, SE, dropout, then max-pooling that remembers where the maxima were."""

    def __init__(self, cfg: QuickNatConfig, in_channels: int) -> None:
        super().__init__(cfg, in_channels)
        self.maxpool = nn.MaxPool2d(cfg.pool, cfg.stride_pool, return_indices=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.se_and_dropout(self.dense(x))
        pooled, indices = self.maxpool(features)
        return pooled, features, indices


class DecoderBlock(DenseBlock):
    """Unpool with the encoder's indices, concatenate the skip (first), dense block, SE, dropout."""

    def __init__(self, cfg: QuickNatConfig, in_channels: int) -> None:
        super().__init__(cfg, in_channels)
        self.unpool = nn.MaxUnpool2d(cfg.pool, cfg.stride_pool)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        unpooled = self.unpool(x, indices, output_size=skip.shape[-2:])
        return self.se_and_dropout(self.dense(torch.cat((skip, unpooled), dim=1)))


class ClassifierBlock(nn.Module):
    """1x1 convolution to class logits."""

    def __init__(self, cfg: QuickNatConfig) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cfg.num_filters, cfg.num_class, cfg.kernel_c, cfg.stride_conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)
