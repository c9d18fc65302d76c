"""Train a fused model through Foundry's trainer and record where its experts lived.

    from foundry.fusion import load_recipe, fuse
    summary = fuse(load_recipe("fuse.yaml"), "runs/fused")     # what `foundry fuse` runs

The trainer (foundry/training/loop.py) builds the fused model from the experts' checkpoints (the
config's `fusion` section makes it), trains only adapters and routers on the `fusion` objective,
and writes the usual run folder. Then the final checkpoint is loaded back as foundry.load does,
placed as in training, and RUN/fusion.json records the placement, the weights per device, the
trainable share and peak memory per device (CPU: the process's peak resident set).
"""
from __future__ import annotations

import os

from foundry.fusion.build import memory_report
from foundry.hardware import pick_device
from foundry.io import write_json


def fuse(cfg, out_dir, resume: bool = False, log=print) -> dict:
    """Train the fused `cfg` into `out_dir`; returns the trainer's summary with `fusion` (fusion.json) added."""
    from foundry.training.loop import train
    from foundry.weights.checkpoint import load_model
    summary = train(cfg, out_dir, resume=resume, log=log)
    if summary["status"] == "diverged":
        return summary
    model, _, _ = load_model(out_dir, device=pick_device(cfg.train.device))
    report = {**memory_report(model), "trainer_peak_mem_mb": summary["peak_mem_mb"]}
    write_json(os.path.join(os.fspath(out_dir), "fusion.json"), report)
    log(f"fusion.json: {report['trainable_params']:,} trainable of {report['params']:,} params; "
        f"weights by device (MB) {report['by_device_mb']}; peak memory (MB) {report['peak_mb']}")
    return {**summary, "fusion": report}
