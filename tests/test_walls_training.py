"""Training several classes: label masks named by DATA/labels.json, the
combined loss and per-class Dice, the class names in the checkpoint, and test-set scoring."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY, load_checkpoint
from PIL import Image

import run
from dataset import DataError, StreamingPairs, augment_batch, find_pairs, load_pairs, read_pair
from measurement.inference import load_model, predict_probabilities
from measurement.scoring import score_batch, score_test_set
from mmode.labels import WALL_LABELS, write_labels
from quicknat import CheckpointError, QuickNat, QuickNatConfig, TrainingCheckpoint
from runtime.distributed import sum_over_processes
from training.losses import add_scores, class_dice_loss, metric_names, segmentation_loss

NAMES = list(WALL_LABELS)
BINARY_COLUMNS = [
    "epoch", "train_loss", "train_dice", "train_iou", "train_mse",
    "val_loss", "val_dice", "val_iou", "val_mse", "lr", "seconds",
]  # fmt: skip


def write_label_data(root: Path, n: int = 8, size: int = 40, seed: int = 0) -> Path:
    """root/img, root/mask (label masks 0-3: septum, cavity and posterior wall bands from the
    top) and root/labels.json."""
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True)
    (root / "mask").mkdir()
    for i in range(n):
        top = 4 + int(rng.integers(0, 4))
        borders = [top, top + 6, top + 18 + int(rng.integers(0, 6)), 0]
        borders[3] = borders[2] + 6
        mask = np.zeros((size, size), np.uint8)
        image = (rng.random((size, size)) * 60 + 40).astype(np.uint8)
        for value, (a, b) in enumerate(zip(borders, borders[1:], strict=False), start=1):
            mask[a:b] = value
            image[a:b] = (rng.random((b - a, size)) * 40 + (200 if value != 2 else 10)).astype(
                np.uint8
            )
        Image.fromarray(image).save(root / "img" / f"rec{i}.png")
        Image.fromarray(mask).save(root / "mask" / f"rec{i}.png")
    write_labels(root)
    return root


# ---- the loss and the scores, against hand-computed values ------------------------------


def test_the_multi_class_loss_is_cross_entropy_plus_foreground_soft_dice():
    # Two pixels, three classes: softmax (1/3, 1/3, 1/3) and (1/4, 1/4, 1/2); classes 0 and 2.
    logits = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, math.log(2)]]).view(1, 3, 1, 2)
    target = torch.tensor([0.0, 2.0]).view(1, 1, 1, 2)
    cross_entropy = (math.log(3) + math.log(2)) / 2
    # Class 1: overlap 0, areas 7/12 + 0 -> Dice 1/(19/12); class 2: overlap 1/2, areas
    # 5/6 + 1 -> Dice 2/(17/6). Smoothed by 1, as the binary soft Dice.
    dice = ((1 - 12 / 19) + (1 - 12 / 17)) / 2
    assert class_dice_loss(logits, target).item() == pytest.approx(dice, rel=1e-6)
    for kind in ("bce", "dice", "bce+dice"):  # --loss is for binary masks only
        loss = segmentation_loss(logits, target, kind).item()
        assert loss == pytest.approx(cross_entropy + dice, rel=1e-6)


def test_the_multi_class_loss_pulls_each_pixel_towards_its_class():
    target = torch.tensor([[0, 1, 2, 3]] * 4, dtype=torch.float32).view(1, 1, 4, 4)
    logits = torch.zeros(1, 4, 4, 4, requires_grad=True)
    segmentation_loss(logits, target, "bce").backward()
    true_class = torch.nn.functional.one_hot(target[0, 0].long(), 4).permute(2, 0, 1).bool()
    assert (logits.grad[0][true_class] < 0).all() and (logits.grad[0][~true_class] > 0).all()


def test_per_class_dice_of_known_class_maps():
    labels = ["background", "a", "b"]
    target = torch.tensor([[0, 1, 1], [2, 2, 2]]).view(1, 1, 2, 3).float()
    pred = torch.tensor([[0, 1, 2], [2, 2, 2]])
    logits = torch.nn.functional.one_hot(pred, 3).permute(2, 0, 1)[None].float() * 5
    sums = dict.fromkeys(("n", *metric_names(labels)), 0.0)
    add_scores(sums, torch.tensor(0.5), logits, target, labels)
    sums = sum_over_processes(sums, torch.device("cpu"))  # device sums -> numbers
    # a: 1 of 2 true pixels, 1 predicted: Dice 2/3, IoU 1/2; b: 3 true, 4 predicted, 3 shared:
    # Dice 6/7, IoU 3/4. One pixel of six has the wrong class.
    assert sums["dice_a"] == pytest.approx(2 / 3) and sums["dice_b"] == pytest.approx(6 / 7)
    assert sums["dice"] == pytest.approx((2 / 3 + 6 / 7) / 2)
    assert sums["iou"] == pytest.approx((1 / 2 + 3 / 4) / 2)
    assert sums["mse"] == pytest.approx(1 / 6)
    assert (sums["n"], sums["loss"]) == (1, 0.5)
    assert metric_names(None) == ("loss", "dice", "iou", "mse")


def test_test_set_scores_per_class_of_known_predictions():
    labels = ["background", "a", "b"]
    target = torch.tensor([[0, 1, 1], [2, 2, 2]]).view(1, 1, 2, 3)
    pred = torch.tensor([[0, 1, 2], [2, 2, 2]])
    probs = torch.nn.functional.one_hot(pred, 3).permute(2, 0, 1)[None].float() * 0.8 + 0.1
    [row] = score_batch(probs, target, 0.5, labels)
    assert row["dice_a"] == pytest.approx(2 / 3) and row["dice_b"] == pytest.approx(6 / 7)
    assert row["dice"] == pytest.approx((2 / 3 + 6 / 7) / 2)
    assert row["mse"] == pytest.approx(1 / 6)
    assert row["loss"] == pytest.approx(-(5 * math.log(0.9) + math.log(0.1)) / 6)
    assert (row["true_px"], row["pred_px"], row["overlap_px"]) == (5, 5, 4)
    metrics = score_test_set([row])
    assert metrics["dice_a"] == pytest.approx(2 / 3) and metrics["dice_b"] == pytest.approx(6 / 7)
    assert metrics["dice_global"] == pytest.approx(2 * 4 / 10)


# ---- reading label data ------------------------------------------------------------------


def test_label_masks_keep_their_values_and_binary_data_stays_binary(tmp_path):
    data = write_label_data(tmp_path / "data")
    pairs = find_pairs(data)
    labelled = load_pairs(pairs, 32, labels=NAMES)
    assert set(labelled.masks.unique().tolist()) == {0, 1, 2, 3}
    assert labelled.labels == NAMES and labelled.warnings == []
    binary = load_pairs(pairs, 32)  # without labels: every non-zero pixel is foreground
    assert set(binary.masks.unique().tolist()) == {0, 1} and binary.labels is None
    streamed = StreamingPairs(load_pairs(pairs, 32, keep=False, labels=NAMES), ["rec0"])
    assert torch.equal(streamed[0][1], labelled.masks[0])
    assert torch.equal(read_pair(pairs[0], 32, 4)[1], labelled.masks[0])


def test_augmentation_moves_label_masks_without_blending_classes():
    masks = torch.zeros(8, 1, 32, 32, dtype=torch.uint8)
    for value, rows in enumerate((slice(4, 10), slice(10, 22), slice(22, 28)), start=1):
        masks[:, :, rows] = value
    torch.manual_seed(0)
    _, moved = augment_batch(torch.rand(8, 1, 32, 32), masks)
    assert set(moved.unique().tolist()) == {0, 1, 2, 3}
    assert not torch.equal(moved, masks)


def refused(data: Path) -> str:
    with pytest.raises(DataError) as err:
        load_pairs(find_pairs(data), 32, labels=NAMES)
    return str(err.value)


def test_a_value_that_labels_json_does_not_name_is_refused_naming_the_file(tmp_path):
    data = write_label_data(tmp_path / "data")
    mask = np.asarray(Image.open(data / "mask" / "rec3.png")).copy()
    mask[0, 0] = 7
    Image.fromarray(mask).save(data / "mask" / "rec3.png")
    message = refused(data)
    assert (
        f"{data / 'mask' / 'rec3.png'} holds the value(s) [7], which {data / 'labels.json'} "
        "does not name (0-3)"
    ) in message
    assert "rec0" not in message


def test_a_mask_folder_mixing_binary_and_label_masks_is_named(tmp_path):
    data = write_label_data(tmp_path / "data")
    for name in ("rec1.png", "rec5.png"):
        mask = np.asarray(Image.open(data / "mask" / name))
        Image.fromarray(((mask != 0) * 255).astype(np.uint8)).save(data / "mask" / name)
    message = refused(data)
    assert f"{data / 'mask'} mixes binary masks (0 and 255: rec1.png, rec5.png)" in message
    assert "with label masks (0-3: rec0.png, rec2.png" in message


def test_binary_masks_with_a_labels_json_are_named(tmp_path, make_data):
    data = make_data()
    write_labels(data)
    message = refused(data)
    assert f"{data / 'mask'} holds binary masks (0 and 255), but" in message
    assert f"remove {data / 'labels.json'} to train on binary cavity masks" in message


def test_binary_0_1_masks_with_a_four_class_labels_json_are_refused(tmp_path, make_data, call_main):
    """Read as classes, 0/1 masks would teach the cavity as the septum without a word."""
    data = make_data()
    for path in (data / "mask").iterdir():
        mask = np.asarray(Image.open(path))
        Image.fromarray((mask != 0).astype(np.uint8)).save(path)
    write_labels(data)
    result = call_main(run.main, "-d", data, "-o", tmp_path / "out", "-e", "1", *TINY)
    assert result.code == 2 and "Traceback" not in result.err
    assert result.err == (
        f"error: {data / 'mask'} holds binary masks (0 and 1), but {data / 'labels.json'} "
        f"names 4 classes; remove {data / 'labels.json'} to train on binary cavity masks, or "
        "write label masks (0-3).\n"
    )
    assert not (tmp_path / "out").exists()


def test_many_masks_with_values_labels_json_does_not_name_are_counted_not_listed(tmp_path):
    data = write_label_data(tmp_path / "data", n=40)
    write_labels(data, {"background": 0, "septum": 1, "cavity": 2})  # the masks hold 0-3
    with pytest.raises(DataError) as err:
        load_pairs(find_pairs(data), 32, labels=["background", "septum", "cavity"])
    message = str(err.value)
    assert message == (
        f"40 masks in {data / 'mask'} hold values 3, which {data / 'labels.json'} does not "
        "name (0-2): rec0.png, rec1.png, rec10.png and 37 more; fix the masks or name the "
        f"values in {data / 'labels.json'}."
    )


def test_classes_test_py_cannot_measure_with_train_with_a_warning(tmp_path, call_main):
    data = write_label_data(tmp_path / "data")
    write_labels(data, {"background": 0, "septum": 1, "lumen": 2, "posterior_wall": 3})
    result = call_main(run.main, "-d", data, "-o", tmp_path / "out", "-e", "1", *TINY)
    assert result.code == 0
    assert (
        f"warning: {data / 'labels.json'} names the classes background, septum, lumen, "
        "posterior_wall; test.py measures hearts only with a cavity model (binary masks, no "
        "labels.json) or one of background, septum, cavity, posterior_wall, so this model can "
        "be scored on test sets but cannot measure recordings."
    ) in result.err
    measurable = call_main(run.main, "-d", write_label_data(tmp_path / "walls"), "-o",
                           tmp_path / "walls_out", "-e", "1", *TINY)  # fmt: skip
    assert measurable.code == 0 and "cannot measure recordings" not in measurable.err


# ---- a tiny four-class run -----------------------------------------------------------------


@pytest.fixture(scope="module")
def four_class(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("four_class")
    data = write_label_data(root / "data")
    out = root / "out"
    assert run.main(["-d", str(data), "-o", str(out), "-e", "2", "--augment", *TINY]) == 0
    return {"data": data, "out": out, "root": root}


def test_a_four_class_run_writes_per_class_dice_and_its_labels(four_class):
    with open(four_class["out"] / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    per_class = [f"dice_{name}" for name in NAMES[1:]]
    assert list(rows[0]) == [
        "epoch",
        *(f"train_{k}" for k in ("loss", "dice", "iou", "mse", *per_class)),
        *(f"val_{k}" for k in ("loss", "dice", "iou", "mse", *per_class)),
        "lr",
        "seconds",
    ]
    for row in rows:
        for split in ("train", "val"):
            mean = np.mean([float(row[f"{split}_{k}"]) for k in per_class])
            assert float(row[f"{split}_dice"]) == pytest.approx(mean)
    checkpoint = load_checkpoint(four_class["out"] / "best.pt")
    assert checkpoint["labels"] == NAMES and checkpoint["model_config"]["num_class"] == 4
    assert TrainingCheckpoint.from_dict(checkpoint, "best.pt").labels == NAMES
    model, size, labels, _ = load_model(four_class["out"] / "best.pt", {}, torch.device("cpu"))
    assert size == 32 and labels == NAMES
    probs = predict_probabilities(model, torch.rand(2, 1, 32, 32))
    assert probs.shape == (2, 4, 32, 32)
    assert torch.allclose(probs.sum(1), torch.ones(2, 32, 32))


def test_a_binary_run_writes_the_columns_and_keys_it_always_did(tmp_path, make_data):
    data, out = make_data(), tmp_path / "out"
    assert run.main(["-d", str(data), "-o", str(out), "-e", "1", *TINY]) == 0
    with open(out / "metrics.csv", newline="") as f:
        assert next(csv.reader(f)) == BINARY_COLUMNS
    checkpoint = load_checkpoint(out / "last.pt")
    assert "labels" not in checkpoint and checkpoint["model_config"]["num_class"] == 1
    assert set(checkpoint) == {
        "epoch", "net_state_dict", "optimizer", "loss", "dice", "mse", "best_dice",
        "best_mse", "model_config", "im_size", "args", "split", "history", "progress",
        "rng_state", "format_version", "lr_plan",
    }  # fmt: skip
    assert TrainingCheckpoint.from_dict(checkpoint, "last.pt").labels is None


def test_resuming_with_data_of_other_classes_is_one_sentence(four_class, make_data, call_main):
    binary = make_data()
    result = call_main(
        run.main, "-d", binary, "-o", four_class["root"] / "resumed", "-f",
        four_class["out"] / "last.pt", *TINY,
    )  # fmt: skip
    assert result.code == 2
    assert result.err.strip() == (
        f"error: {four_class['out'] / 'last.pt'} was trained on the classes background, "
        f"septum, cavity, posterior_wall (labels.json), but {binary} holds binary cavity "
        "masks (no labels.json); resume with data of the checkpoint's classes, or start "
        "afresh without -f."
    )


def test_a_non_binary_loss_with_label_data_is_warned_about(tmp_path, call_main):
    data = write_label_data(tmp_path / "data", n=4)
    out = tmp_path / "out"
    result = call_main(run.main, "-d", data, "-o", out, "-e", "1", "--loss", "dice", *TINY)
    assert result.code == 0, result.err
    assert "--loss dice applies to binary masks only" in result.err


def test_labels_in_a_checkpoint_are_validated(four_class):
    checkpoint = load_checkpoint(four_class["out"] / "last.pt")
    for bad, phrase in (
        (["cavity", "septum"], "its labels is not a list of two or more distinct class names"),
        ("background", "its labels is not a list"),
        (NAMES[:3], "it names 3 labels for a model of 4 classes"),
    ):
        with pytest.raises(CheckpointError, match=phrase):
            TrainingCheckpoint.from_dict({**checkpoint, "labels": bad}, "x.pt")


# ---- test-set scoring --------------------------------------------------------------------


def test_scoring_a_four_class_model_writes_dice_per_class(four_class, call_main, measure_cli):
    out = four_class["root"] / "scored"
    model = four_class["out"] / "best.pt"
    result = call_main(measure_cli.main, "-d", four_class["data"], "-m", model, "-o", out)
    assert result.code == 0, result.err
    metrics = json.loads((out / "metrics.json").read_text())
    per_class = [f"dice_{name}" for name in NAMES[1:]]
    assert all(0 <= metrics[key] <= 1 for key in per_class)
    assert metrics["dice"] == pytest.approx(np.mean([metrics[key] for key in per_class]))
    with open(out / "per_image.csv", newline="") as f:
        header = next(csv.reader(f))
    assert header[-3:] == per_class and header[0] == "name"
    assert len(list((out / "overlays").iterdir())) == 16  # 8 worst, 8 first


def test_a_model_scored_on_masks_of_other_classes_is_one_sentence(
    four_class, make_data, call_main, measure_cli, tmp_path
):
    binary = make_data()
    model = four_class["out"] / "best.pt"
    result = call_main(measure_cli.main, "-d", binary, "-m", model, "-o", tmp_path / "a")
    assert result.code == 2 and not (tmp_path / "a").exists()
    assert result.err.strip() == (
        f"error: {model} segments 4 classes, but {binary} holds binary masks (no labels.json); "
        "score it on label masks with a labels.json naming its classes."
    )
    one_class = tmp_path / "binary.pt"
    config = QuickNatConfig(num_filters=8, kernel_h=3, kernel_w=3)
    torch.save(QuickNat(config).state_dict(), one_class)
    result = call_main(
        measure_cli.main, "-d", four_class["data"], "-m", one_class, "-o", tmp_path / "b",
        "--num-filters", "8", "--kernel", "3",
    )  # fmt: skip
    assert result.code == 2 and not (tmp_path / "b").exists()
    assert result.err.strip() == (
        f"error: {one_class} segments one class (the cavity), but {four_class['data']} holds "
        "label masks of 4 classes (labels.json); score it on binary cavity masks."
    )


def test_a_model_is_refused_for_masks_or_recordings_of_other_class_names():
    from measurement.scoring import check_classes
    from measurement.walls import check_measurable
    from runtime.errors import SetupError

    other = ["background", "a", "b", "c"]
    with pytest.raises(SetupError, match="was trained on the classes background, septum"):
        check_classes(4, other, "m.pt", "DATA", NAMES)
    check_classes(4, NAMES, "m.pt", "DATA", NAMES)
    check_classes(4, other, "m.pt", "DATA", None)  # another tool's checkpoint: counts only
    with pytest.raises(SetupError, match=r"m.pt segments 4 classes \(background, a, b, c\)"):
        check_measurable(4, other, "m.pt")
    with pytest.raises(SetupError, match="segments 3 classes; test.py measures"):
        check_measurable(3, None, "m.pt")
    for classes, labels in ((1, None), (4, None), (4, NAMES)):
        check_measurable(classes, labels, "m.pt")
