"""The original tool's training loop, kept as the benchmark's yardstick.

As the original did it: every epoch each image and mask is opened with PIL and
resized (the mask bilinearly too), batches are built one item at a time with
num_workers=0, the model runs in fp32 NCHW, and the loss is sigmoid + BCELoss.

    python -m bench.baseline -d DATA -e 2 -b 4 -p 128
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dataset import Pair, find_pairs, split_names
from quicknat import QuickNat


class OriginalDataset(Dataset):
    """Decodes and resizes every item on every access, as the original tool did."""

    def __init__(self, pairs: list[Pair], size: int) -> None:
        self.pairs = pairs
        self.size = size

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        pair = self.pairs[i]
        image = Image.open(pair.image).convert("L").resize((self.size, self.size), Image.BILINEAR)
        mask = Image.open(pair.mask).convert("L").resize((self.size, self.size), Image.BILINEAR)
        image_t = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255)[None]
        mask_t = torch.from_numpy((np.asarray(mask, dtype=np.float32) > 0).astype(np.float32))[None]
        return image_t, mask_t


def original_loader(pairs: list[Pair], size: int, batch_size: int, seed: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    dataset = OriginalDataset(pairs, size)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
) -> int:
    """One epoch as the original trained; returns the number of images seen."""
    model.train()
    criterion = nn.BCELoss()
    seen = 0
    for images, masks in loader:
        images, masks = images.to(device), masks.to(device)
        loss = criterion(torch.sigmoid(model(images)), masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += images.shape[0]
    return seen


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader) -> float:
    """The original's validation: BCE loss and the MSE of the thresholded mask."""
    model.eval()
    mse, n = 0.0, 0
    for images, masks in loader:
        pred = (torch.sigmoid(model(images)) > 0.5).float()
        mse += ((pred - masks) ** 2).mean().item() * images.shape[0]
        n += images.shape[0]
    return mse / n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-d", "--datapath", required=True)
    p.add_argument("-e", "--epochs", type=int, default=2)
    p.add_argument("-b", "--batch-size", type=int, default=4)
    p.add_argument("-p", "--im-size", type=int, default=128)
    p.add_argument("-l", "--learning-rate", type=float, default=0.0001)
    p.add_argument("--num-filters", type=int, default=64)
    p.add_argument("--kernel", type=int, default=5)
    args = p.parse_args(argv)

    torch.manual_seed(0)
    pairs = {pair.name: pair for pair in find_pairs(args.datapath)}
    split = split_names(list(pairs), 20, seed=0)
    train = original_loader([pairs[n] for n in split["train"]], args.im_size, args.batch_size, 0)
    val = original_loader([pairs[n] for n in split["val"]], args.im_size, args.batch_size, 0)
    config = {"num_filters": args.num_filters, "kernel_h": args.kernel, "kernel_w": args.kernel}
    model = QuickNat(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
    for epoch in range(1, args.epochs + 1):
        started = time.perf_counter()
        train_epoch(model, train, optimizer, torch.device("cpu"))
        mse = evaluate(model, val)
        print(f"epoch {epoch}: val mse {mse:.5f} ({time.perf_counter() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
