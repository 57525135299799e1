"""QuickNAT: architecture, configuration, SE options, checkpoint loading."""

import copy
import os

import pytest
import torch
import torch.nn.functional as F

from quicknat import (
    CheckpointError,
    QuickNat,
    QuickNatConfig,
    count_parameters,
    enable_test_dropout,
    infer_config,
    load_weights,
    predict_logits,
)

TINY = {"num_filters": 8, "kernel_h": 3, "kernel_w": 3}
BLOCKS = [f"encode{i}" for i in range(1, 5)] + ["bottleneck"] + [f"decode{i}" for i in range(1, 5)]


def seeded_model(params, seed=0):
    torch.manual_seed(seed)
    model = QuickNat(params)
    # Non-trivial batch-norm statistics, so that eval mode really uses them.
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
        for name, p in model.named_parameters():
            if "batchnorm" in name or "prelu" in name:
                p.uniform_(0.5, 1.5) if name.endswith("weight") else p.normal_(0, 0.1)
    return model.eval()


def expected_shapes(f=64, k=5, c=1, n_class=1):
    shapes = {}
    for block in BLOCKS:
        cin = c if block == "encode1" else (2 * f if block.startswith("decode") else f)
        shapes[f"{block}.conv1.weight"] = (f, cin, k, k)
        shapes[f"{block}.conv1.bias"] = (f,)
        shapes[f"{block}.conv2.weight"] = (f, cin + f, k, k)
        shapes[f"{block}.conv2.bias"] = (f,)
        shapes[f"{block}.conv3.weight"] = (f, cin + 2 * f, 1, 1)
        shapes[f"{block}.conv3.bias"] = (f,)
        for i, n in ((1, cin), (2, cin + f), (3, cin + 2 * f)):
            for stat in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"{block}.batchnorm{i}.{stat}"] = (n,)
            shapes[f"{block}.batchnorm{i}.num_batches_tracked"] = ()
        shapes[f"{block}.prelu.weight"] = (1,)
    shapes["classifier.conv.weight"] = (n_class, f, 1, 1)
    shapes["classifier.conv.bias"] = (n_class,)
    return shapes


def test_default_state_dict_keys_shapes_and_parameter_count():
    model = QuickNat({})
    actual = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert actual == expected_shapes()
    assert count_parameters(model) == 3_515_216


@pytest.mark.parametrize(
    "params, shape",
    [
        (TINY, (1, 1, 64, 64)),
        (TINY, (2, 1, 128, 96)),
        ({**TINY, "num_class": 3}, (2, 1, 32, 48)),
        ({**TINY, "num_channels": 3}, (1, 3, 16, 32)),
    ],
)
def test_forward_shapes(params, shape):
    out = QuickNat(params).eval()(torch.randn(shape))
    assert out.shape == (shape[0], params.get("num_class", 1), *shape[2:])


@pytest.mark.parametrize("shape", [(1, 1, 60, 64), (1, 1, 64, 40), (1, 2, 64, 64), (1, 64, 64)])
def test_invalid_input_raises_value_error(shape):
    with pytest.raises(ValueError, match="QuickNAT"):
        QuickNat(TINY)(torch.randn(shape))


def test_invalid_size_message_says_which_sizes_work():
    with pytest.raises(ValueError, match="multiples of 16.*64x64"):
        QuickNat(TINY)(torch.randn(1, 1, 50, 64))


def test_params_dict_is_not_mutated():
    params = {"num_channels": 1, "num_class": 1, "num_filters": 8, "kernel_h": 3, "kernel_w": 3}
    before = copy.deepcopy(params)
    QuickNat(params)
    assert params == before


@pytest.mark.parametrize(
    "key, value",
    [
        ("se_block", "FOO"),
        ("kernel_h", 4),
        ("kernel_w", 0),
        ("num_filters", 0),
        ("num_class", -1),
        ("drop_out", 1.5),
        ("pool", 1),
        ("num_filters", 2.5),
        ("num_flters", 8),
    ],
)
def test_invalid_config_raises_value_error_naming_the_key(key, value):
    with pytest.raises(ValueError, match=key):
        QuickNat({**TINY, key: value})


def test_typed_config_round_trips_and_is_accepted():
    cfg = QuickNatConfig.from_dict({**TINY, "se_block": "csse"})
    assert cfg.se_block == "CSSE"
    assert QuickNatConfig.from_dict(cfg.to_dict()) == cfg
    assert QuickNat(cfg).config == cfg


@pytest.mark.parametrize(
    "se, per_block",
    [
        ("CSE", 8 * 4 + 4 + 4 * 8 + 8),  # Linear(8, 4) + Linear(4, 8)
        ("SSE", 8 + 1),  # Conv2d(8, 1, 1)
        ("CSSE", 8 * 4 + 4 + 4 * 8 + 8 + 8 + 1),
    ],
)
def test_se_adds_its_parameters_and_changes_the_output(se, per_block):
    plain = seeded_model(TINY)
    with_se = seeded_model({**TINY, "se_block": se})
    assert count_parameters(with_se) - count_parameters(plain) == per_block * len(BLOCKS)
    extra = set(with_se.state_dict()) - set(plain.state_dict())
    assert extra and all(".SELayer." in k for k in extra)
    # Same shared weights, SE on top: the output must change.
    with_se.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(plain(x), with_se(x))


def test_se_none_adds_no_parameters():
    assert set(QuickNat({**TINY, "se_block": "NONE"}).state_dict()) == set(
        QuickNat(TINY).state_dict()
    )


@pytest.mark.parametrize("wrap", ["net_state_dict", "bare", "module_prefix", "ours"])
def test_checkpoint_formats_load_strictly(tmp_path, wrap):
    source = seeded_model(TINY, seed=1)
    sd = source.state_dict()
    obj = {
        "net_state_dict": {"net_state_dict": sd, "optimizer": {}},
        "bare": sd,
        "module_prefix": {"module." + k: v for k, v in sd.items()},
        "ours": {"epoch": 3, "net_state_dict": sd, "model_config": source.config.to_dict()},
    }[wrap]
    path = tmp_path / "w.pt"
    torch.save(obj, path)
    target = QuickNat(TINY).eval()
    load_weights(target, path)
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(source(x), target(x))


def test_architecture_mismatch_names_keys_and_fitting_settings(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(QuickNat({**TINY, "num_filters": 16}).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"shape: encode1.conv1.weight.*num_filters=16"):
        load_weights(QuickNat(TINY), path)


def test_infer_config_from_weights():
    sd = QuickNat({**TINY, "num_class": 2, "se_block": "SSE"}).state_dict()
    assert infer_config(sd) == {
        "num_filters": 8,
        "num_channels": 1,
        "kernel_h": 3,
        "kernel_w": 3,
        "num_class": 2,
        "se_block": "SSE",
    }


def test_pickle_that_runs_code_is_refused_and_does_not_run(evil_checkpoint):
    path, marker = evil_checkpoint
    with pytest.raises(CheckpointError, match="refused.*could run code"):
        load_weights(QuickNat(TINY), path)
    assert not marker.exists()


def test_corrupt_and_missing_checkpoints_raise_checkpoint_error(tmp_path):
    good = tmp_path / "good.pt"
    torch.save(QuickNat(TINY).state_dict(), good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: os.path.getsize(good) // 2])
    with pytest.raises(CheckpointError, match="cut.pt is not a readable"):
        load_weights(QuickNat(TINY), cut)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_weights(QuickNat(TINY), tmp_path / "nope.pt")


def test_eval_is_deterministic_and_train_uses_dropout():
    model = seeded_model({**TINY, "drop_out": 0.5})
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        model.train()
        assert not torch.equal(model(x), model(x))


def test_test_dropout_samples_but_keeps_batchnorm_in_eval():
    model = seeded_model({**TINY, "drop_out": 0.5})
    enable_test_dropout(model)
    assert not model.encode1.batchnorm1.training and model.encode1.drop_out.training
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))


def test_predict_logits_pads_and_crops():
    model = seeded_model(TINY)
    x = torch.randn(1, 1, 32, 48)
    with torch.no_grad():
        assert torch.equal(predict_logits(model, x), model(x))
        assert predict_logits(model, torch.randn(2, 1, 37, 50)).shape == (2, 1, 37, 50)


# An independent reference: the original QuickNAT forward pass written with plain
# functional calls on the state_dict, following the published description step by step.
def reference_forward(sd, x, se="NONE", k=5):
    pad = (k - 1) // 2

    def bn(t, name):
        return F.batch_norm(
            t, sd[name + ".running_mean"], sd[name + ".running_var"],
            sd[name + ".weight"], sd[name + ".bias"], False, 0.1, 1e-5,
        )  # fmt: skip

    def dense(t, b):
        slope = sd[b + ".prelu.weight"]
        o1 = bn(t, b + ".batchnorm1")
        o3 = F.conv2d(F.prelu(o1, slope), sd[b + ".conv1.weight"], sd[b + ".conv1.bias"], 1, pad)
        o4 = torch.cat((t, o3), 1)
        o5 = F.prelu(bn(o4, b + ".batchnorm2"), slope)
        o7 = F.conv2d(o5, sd[b + ".conv2.weight"], sd[b + ".conv2.bias"], 1, pad)
        o8 = torch.cat((t, o3, o7), 1)
        o10 = F.prelu(bn(o8, b + ".batchnorm3"), slope)
        return F.conv2d(o10, sd[b + ".conv3.weight"], sd[b + ".conv3.bias"])

    def cse(t, p):
        z = t.view(t.shape[0], t.shape[1], -1).mean(dim=2)
        z = F.relu(F.linear(z, sd[p + ".fc1.weight"], sd[p + ".fc1.bias"]))
        z = torch.sigmoid(F.linear(z, sd[p + ".fc2.weight"], sd[p + ".fc2.bias"]))
        return torch.mul(t, z.view(z.shape[0], z.shape[1], 1, 1))

    def sse(t, p):
        gate = torch.sigmoid(F.conv2d(t, sd[p + ".conv.weight"], sd[p + ".conv.bias"]))
        return torch.mul(t, gate)

    def squeeze_excite(t, b):
        p = b + ".SELayer"
        if se == "CSE":
            return cse(t, p)
        if se == "SSE":
            return sse(t, p)
        if se == "CSSE":
            return torch.max(cse(t, p + ".cSE"), sse(t, p + ".sSE"))
        return t

    skips, t = [], x
    for b in ("encode1", "encode2", "encode3", "encode4"):
        out = squeeze_excite(dense(t, b), b)
        t, idx = F.max_pool2d(out, 2, 2, return_indices=True)
        skips.append((out, idx))
    t = dense(t, "bottleneck")
    for b, (skip, idx) in zip(
        ("decode4", "decode1", "decode2", "decode3"), reversed(skips), strict=True
    ):
        t = squeeze_excite(dense(torch.cat((skip, F.max_unpool2d(t, idx, 2, 2)), 1), b), b)
    return F.conv2d(t, sd["classifier.conv.weight"], sd["classifier.conv.bias"])


@pytest.mark.parametrize(
    "params, size",
    [
        ({}, 64),
        ({"num_filters": 16, "kernel_h": 3, "kernel_w": 3}, 48),
        ({"num_filters": 16, "kernel_h": 3, "kernel_w": 3, "se_block": "CSSE"}, 32),
        ({"num_filters": 16, "kernel_h": 3, "kernel_w": 3, "se_block": "CSE"}, 32),
        ({"num_filters": 16, "kernel_h": 3, "kernel_w": 3, "se_block": "SSE"}, 32),
    ],
)
def test_matches_reference_forward(params, size):
    model = seeded_model(params, seed=3)
    x = torch.randn(2, 1, size, size)
    with torch.no_grad():
        ours = model(x)
        ref = reference_forward(
            model.state_dict(), x, params.get("se_block", "NONE"), params.get("kernel_h", 5)
        )
    assert torch.allclose(ours, ref, rtol=1e-4, atol=1e-4 * ref.abs().max().item())
