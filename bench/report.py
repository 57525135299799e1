"""The benchmark's RESULTS.md: its tables, and each target of the device, PASS or FAIL."""

from __future__ import annotations

import statistics

TARGETS = {
    "cpu": {"train": 1.8, "process": 1.8, "dice": 0.01},
    "cuda": {"train": 3.0, "infer": 3.0, "peak_share": 0.25, "first_epoch": 2.0, "dice": 0.01},
}


def tflops(gflop_per_img: float, img_s: float) -> float:
    return gflop_per_img * img_s / 1000


def checks(results: dict, cfg) -> list[tuple[str, bool]]:
    """Each target of this device, with its measured value: (text, met)."""
    target = TARGETS["cuda" if cfg.device.startswith("cuda") else "cpu"]
    first = results["sizes"][0]
    where = f"at {first['size']} px, batch {cfg.batch_size}"
    out = []

    def at_least(text: str, value: float, key: str) -> None:
        out.append((f"{text} (target >= {target[key]:g}x)", value >= target[key]))

    train, infer = first["train_img_s"], first["infer_img_s"]
    ratio = train["ours"] / train["baseline"]
    at_least(f"training {where}: {ratio:.2f}x the original loop", ratio, "train")
    if "infer" in target:
        ratio = infer["ours"] / infer["baseline"]
        at_least(f"inference {where}: {ratio:.2f}x the original loop", ratio, "infer")
    if "peak_share" in target:
        achieved = tflops(first["train_gflop_per_img"], train["ours"])
        share = achieved / (results["peak"]["gflops"] / 1000)
        text = f"training {where} at {share:.0%} of the measured matmul peak"
        out.append(
            (f"{text} (target >= {target['peak_share']:.0%})", share >= target["peak_share"])
        )
    if "first_epoch" in target and "startup" in results:
        s = results["startup"]
        ratio = s["first_s"] / s["steady_s"]
        text = f"run.py's first epoch {s['first_s']:.1f} s, {ratio:.1f}x a steady one"
        out.append(
            (f"{text} (target <= {target['first_epoch']:g}x)", ratio <= target["first_epoch"])
        )
    if "process" in target and "process" in results:
        seconds = results["process"]["seconds"]
        ratio = statistics.median(seconds["baseline"]) / statistics.median(seconds["ours"])
        at_least(f"whole run.py processes finish {ratio:.2f}x sooner", ratio, "process")
    d = results["accuracy"]["val_dice"]
    diff = abs(d["auto"] - d["fp32"])
    text = f"validation Dice with --precision auto within {diff:.4f} of fp32"
    out.append((f"{text} (target <= {target['dice']:g})", diff <= target["dice"]))
    return out


def render(results: dict, cfg) -> str:
    info, peak = results["machine"], results["peak"]
    device = info.get("gpu", f"{info['cpu']}, {info['cores']} cores")
    lines = [
        "# Benchmark results",
        "",
        f"`python -m bench {' '.join(cfg.argv)}`".replace("  ", " ").replace(" `", "`"),
        "",
        f"Machine: {device}; torch {info['torch']}; {info['date']}. Batch size "
        f"{cfg.batch_size}; QuickNAT {' '.join(cfg.model_flags) or 'as by default'}; "
        f"{cfg.recordings} synthetic recordings from "
        "`preprocessing.synthetic` cut into windows (the images/s columns time the first "
        f"{cfg.timed_windows}). Baseline: the original tool's loop (per-item PIL decode and "
        "resize every epoch, fp32 NCHW, sigmoid + BCELoss, num_workers=0); ours: "
        "`trainer.Trainer` with its defaults. Same model, data and batch size; epochs "
        "alternate in one process; medians of the timed rounds. Peak memory is the process's "
        "resident set on the CPU (it includes what the other contender left allocated).",
        "",
        f"Matrix-multiply peak measured in this run: {peak['gflops'] / 1000:.3g} TFLOP/s "
        f'({peak["precision"]}, {peak["side"]} x {peak["side"]}); the "of peak" columns '
        "divide ours by it.",
        "",
        "| size | precision | train img/s base | train img/s ours | ratio | infer img/s base "
        "| infer img/s ours | ratio | peak MB base | peak MB ours | train TFLOP/s ours "
        "| of peak | infer TFLOP/s ours | of peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    peak_tflops = peak["gflops"] / 1000
    for r in results["sizes"]:
        t, i, m = r["train_img_s"], r["infer_img_s"], r["train_peak_mb"]
        train_tf = tflops(r["train_gflop_per_img"], t["ours"])
        infer_tf = tflops(r["infer_gflop_per_img"], i["ours"])
        lines.append(
            f"| {r['size']} | {r['precision']} | {t['baseline']:.2f} | {t['ours']:.2f} "
            f"| **{t['ours'] / t['baseline']:.2f}x** | {i['baseline']:.2f} | {i['ours']:.2f} "
            f"| **{i['ours'] / i['baseline']:.2f}x** | {m['baseline']:.0f} | {m['ours']:.0f} "
            f"| {train_tf:.3g} | {100 * train_tf / peak_tflops:.0f}% | {infer_tf:.3g} "
            f"| {100 * infer_tf / peak_tflops:.0f}% |"
        )
    first = results["sizes"][0]
    lines += ["", f"FLOP counts (torch.utils.flop_counter) per {first['size']} px image: "
              f"{first['train_gflop_per_img']:.1f} GFLOP forward + backward, "
              f"{first['infer_gflop_per_img']:.1f} GFLOP forward."]  # fmt: skip
    if "process" in results:
        p = results["process"]
        b, o = statistics.median(p["seconds"]["baseline"]), statistics.median(p["seconds"]["ours"])
        lines += [
            "",
            f"Whole processes, {p['epochs']} epochs at {p['size']} px (start-up, data loading, "
            f"validation; ours also writes checkpoints and plots every epoch): baseline "
            f"{b:.1f} s, `run.py` {o:.1f} s: **{b / o:.2f}x**.",
        ]
    if "variants" in results:
        lines += render_variants(results["variants"], cfg)
    if "startup" in results:
        s = results["startup"]
        epochs = ", ".join(f"{x:.1f}" for x in s["epoch_s"])
        lines += [
            "",
            f"Start-up: a whole `run.py -e {len(s['epoch_s'])}` process on the same "
            f"{cfg.startup_windows} windows took {s['wall_s']:.1f} s; its epochs (training, "
            f"batch-norm refresh, validation) {epochs} s: the first "
            f"**{s['first_s'] / s['steady_s']:.1f}x** a steady one.",
        ]
    a = results["accuracy"]
    d = a["val_dice"]
    lines += [
        "",
        f"Accuracy: final validation Dice after {a['epochs']} epochs: `--precision auto` "
        f"{d['auto']:.4f}, `--precision fp32` {d['fp32']:.4f}.",
    ]
    for r in results["sizes"]:
        lines += render_profile(r, results["machine"])
    lines += ["", "## Targets", ""]
    lines += [f"- {'PASS' if ok else 'FAIL'}: {text}" for text, ok in checks(results, cfg)]
    return "\n".join(lines) + "\n"


def render_variants(rows: list[dict], cfg) -> list[str]:
    lines = [
        "",
        f"Variants of our training step at {cfg.sizes[0]} px, each in its own process "
        f"(`python -m bench.steps`) on {cfg.startup_windows} windows: steady images/s, and "
        "where the start-up goes (the device's context, the set-up: data into memory and "
        "the model, the first epoch: cuDNN's kernel choice, compilation).",
        "",
        "| variant | precision | train img/s | context s | set-up s | first epoch s "
        "| steady epoch s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "note" in r:
            lines.append(f"| {r['variant']} | | {r['note']} | | | | |")
            continue
        compiled = "" if r["compiled"] or "--compile" not in r["flags"] else " (compile failed)"
        lines.append(
            f"| {r['variant']}{compiled} | {r['precision']} | **{r['train_img_s']:.1f}** "
            f"| {r['context_s']:.1f} | {r['prepare_s']:.1f} | {r['first_epoch_s']:.1f} "
            f"| {r['steady_epoch_s']:.2f} |"
        )
    return lines


def render_profile(r: dict, info: dict) -> list[str]:
    where = "GPU" if "gpu" in info else "CPU"
    lines = [
        "",
        f"Where our training step spends its time at {r['size']} px (torch.profiler, self "
        f"{where} time, the top operations):",
        "",
        "| operation | calls per step | ms per step | share |",
        "|---|---|---|---|",
    ]
    for op in r["profile"]:
        lines.append(
            f"| `{op['op']}` | {op['calls_per_step']:.0f} | {op['ms_per_step']:.2f} "
            f"| {100 * op['share']:.1f}% |"
        )
    return lines
