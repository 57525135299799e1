"""Training figures: loss and Dice curves, validation samples with outlines."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no screen needed
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from runtime import files  # noqa: E402


def save_curves(history: list[dict[str, float]], path: Path) -> None:
    """Loss and Dice per epoch, train and validation, and the learning rate."""
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, metric in zip(axes[:2], ("loss", "dice"), strict=True):
        for split in ("train", "val"):
            ax.plot(epochs, [row[f"{split}_{metric}"] for row in history], "o-", label=split)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_title("loss")
    axes[1].set_title("Dice at threshold 0.5")
    axes[2].plot(epochs, [row["lr"] for row in history], "o-", color="0.3")
    axes[2].set_xlabel("epoch")
    axes[2].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[2].set_ylabel("learning rate")
    axes[2].set_ylim(bottom=0)  # a constant rate reads as flat, not as noise around -l
    axes[2].ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    axes[2].set_title("learning rate")
    axes[2].grid(alpha=0.3)
    # Fixed margins (room for the tick labels, axis titles and the rate's 1e-3): run.py
    # draws this every epoch, and tight_layout would draw it twice.
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.13, top=0.9, wspace=0.22)
    files.save_figure(path, fig, dpi=100)
    plt.close(fig)


def save_samples(images: torch.Tensor, masks: torch.Tensor, logits: torch.Tensor, path: Path):
    """Validation images with the true (green) and predicted (red) outlines: of the cavity,
    or, for K > 1 classes, of every class (the borders between the class maps' values)."""
    n = images.shape[0]
    fig, axes = plt.subplots(1, n, figsize=(3 * n, 3.2), squeeze=False)
    k = logits.shape[1]
    levels = [c + 0.5 for c in range(k - 1)] if k > 1 else [0.5]
    for ax, image, mask, logit in zip(axes[0], images, masks, logits, strict=True):
        ax.imshow(image[0].float().numpy(), cmap="gray", vmin=0, vmax=1)
        pred = logit.argmax(0) if k > 1 else logit[0] > 0
        for outline, color in ((mask[0], "lime"), (pred, "red")):
            if outline.any() and not (outline == outline.flatten()[0]).all():
                ax.contour(outline.float().numpy(), levels=levels, colors=color, linewidths=1)
        ax.set_axis_off()
    fig.suptitle("validation: true (green) and predicted (red) outlines", fontsize=9)
    # Images without axes: fixed margins, the top one for the title (see save_curves).
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.9, wspace=0.04)
    files.save_figure(path, fig, dpi=80)
    plt.close(fig)
