"""Which expert serves which data: a fused run's usage per layer and per source, as JSON and a heatmap.

    report = usage_report("runs/fused")          # {"usage": {source: [{expert: share} per layer]},
                                                 #  "val_bpb": {source: bpb, "mixture": bpb}, ...}
    write_report(report, "runs/fused/fusion_usage.png")   # the PNG, and the JSON beside it

Usage is the mean combined weight (router and init gate together: what the layer's output is made
of) of each expert path over the tokens of a source's fixed validation slice, the same windows
val_bpb is computed on. Each source is read with the run's data settings and its checkpoint's
tokenizer, so the experts' folders are not needed.
"""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np
import torch

from foundry.errors import UserError
from foundry.evaluation import val_slice, val_windows
from foundry.io import atomic_write_text


@torch.no_grad()
def usage_report(run, device="auto", n_bytes=None) -> dict:
    from foundry.fusion.model import FusedModel
    from foundry.fusion.objective import FusionObjective
    from foundry.hardware import autocast, pick_device
    from foundry.weights.checkpoint import load_model
    device = pick_device(device)
    model, tokenizer, cfg = load_model(run, device)
    if not isinstance(model, FusedModel):
        raise UserError(f"{run}: not a fused model (its config has no fusion section)")
    objective = FusionObjective(cfg, device, tokenizer)
    usage = {}
    for name, ds in objective.datasets.items():
        tokens, _ = val_slice(ds.val, objective.tokenizer.decode, cfg.eval.bytes if n_bytes is None else n_bytes)
        windows = np.concatenate([w[:, :cfg.model.block_size + 1] for w in val_windows(tokens, cfg.model.block_size)
                                  if w.shape[1] == cfg.model.block_size + 1])   # the slice's full windows
        sums = [np.zeros(len(layer.paths)) for layer in model.blocks]
        for i in range(0, len(windows), 32):
            chunk = torch.from_numpy(windows[i:i + 32, :-1]).to(device)
            with autocast(device, cfg):
                model(chunk)
            for total, rows in zip(sums, model.row_usage()):
                total += rows.float().sum(dim=0).cpu().numpy()
        usage[name] = [{label: float(v / len(windows)) for label, v in zip(layer.router.names, total)}
                       for layer, total in zip(model.blocks, sums)]
    metrics = objective.evaluate(model)  # the trainer's numbers: eval.bytes per source
    val_bpb = {n: metrics.get(f"val_bpb/{n}") for n in objective.names}
    val_bpb["mixture"] = metrics.get("val_bpb")
    return {"run": os.fspath(run), "usage": usage, "val_bpb": val_bpb, "windows_per_source": len(windows),
            "experts": list(model.devices), "layers": len(model.blocks)}


def write_report(report: dict, png: str) -> None:
    """The heatmap (one panel per source: layers x expert paths, share of each) and the JSON."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sources = list(report["usage"])
    fig, axes = plt.subplots(1, len(sources), figsize=(1.5 + 2.6 * len(sources), 1.6 + 0.55 * report["layers"]),
                             squeeze=False, sharey=True, layout="constrained")
    for ax, source in zip(axes[0], sources):
        layers = report["usage"][source]
        labels = list(dict.fromkeys(label for layer in layers for label in layer))
        grid = np.array([[layer.get(label, np.nan) for label in labels] for layer in layers])
        image = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
        for (r, c), value in np.ndenumerate(grid):
            if not np.isnan(value):
                ax.text(c, r, f"{value:.2f}", ha="center", va="center", color="white" if value < 0.6 else "black")
        ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
        ax.set_yticks(range(len(layers)), [f"layer {i}" for i in range(len(layers))])
        bpb = report["val_bpb"].get(source)
        ax.set_title(f"data: {source}" + (f"\nval_bpb {bpb:.3f}" if bpb is not None else ""), fontsize=10)
        ax.set_xlabel("expert path", fontsize=9)
    fig.colorbar(image, ax=list(axes[0]), label="share of the layer's output")
    fig.suptitle("expert usage per fused layer and data source", fontsize=10)
    folder = os.path.dirname(os.path.abspath(png))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
        os.replace(tmp, png)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    atomic_write_text(os.path.splitext(png)[0] + ".json", json.dumps(report, indent=2) + "\n")
