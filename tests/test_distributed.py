"""Two CPU processes under torchrun (gloo): one clean checkpoint, all-reduced metrics."""

import csv
import subprocess
import sys

import pytest
import torch
from helpers import ROOT, TINY, load_checkpoint

import run
from dataset import CachedPairs, find_pairs, load_pairs
from mmode.scores import per_image_scores
from quicknat import QuickNat, load_weights
from training.losses import segmentation_loss


@pytest.mark.slow  # two torchrun processes, each importing torch and training
def test_torchrun_two_processes_write_one_checkpoint_with_all_reduced_metrics(
    tmp_path, make_data, call_main
):
    data = make_data(n=11)
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(ROOT / "run.py"), "-d", str(data), "-o", str(out), *TINY, "-e", "2",
        "--precision", "fp32", "--no-channels-last",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("Done.") == 1  # only rank 0 talks
    assert "2 process(es)" in result.stdout

    checkpoint = load_checkpoint(out / "last.pt")
    assert not any(k.startswith("module.") for k in checkpoint["net_state_dict"])
    model = QuickNat(checkpoint["model_config"]).eval()
    load_weights(model, out / "last.pt")

    # The validation metrics in metrics.csv are sums over both processes' halves of the
    # validation set (one image each): one process evaluating the saved weights on each
    # image agrees. (One image at a time, as each process did: QuickNAT's decoders unpool
    # at each 2x2 window's argmax, and the round-off of a batch of two, about 1e-6, can
    # flip a near-tie and move a logit by 0.3; seen once in this test.)
    val = CachedPairs(load_pairs(find_pairs(data), 32), checkpoint["split"]["val"])
    images, masks = val.__getitems__(list(range(len(val))))
    with torch.no_grad():
        logits = torch.cat([model(image[None].float() / 255) for image in images])
    scores = per_image_scores(logits > 0, masks > 0)
    row = list(csv.DictReader(open(out / "metrics.csv")))[-1]
    assert len(val) == 2
    assert float(row["val_dice"]) == scores["dice"].mean().item()
    assert abs(float(row["val_mse"]) - scores["mse"].mean().item()) < 1e-12
    per_image_loss = [
        segmentation_loss(logits[i : i + 1], masks[i : i + 1].float(), "bce").item()
        for i in range(len(val))
    ]
    assert abs(float(row["val_loss"]) - sum(per_image_loss) / len(val)) < 1e-6

    # A DDP checkpoint resumes in one process (this one).
    resume = [*TINY, "-e", "1", "--precision", "fp32", "-f", out / "last.pt"]
    result = call_main(run.main, "-d", data, "-o", out, *resume)
    assert result.code == 0, result.err[-2000:]
    assert load_checkpoint(out / "last.pt")["epoch"] == 3
