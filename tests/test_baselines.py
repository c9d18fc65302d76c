"""The shipped architecture baselines train and sample: baselines/nanogpt.yaml (plain GPT) and
baselines/free_transformer.yaml (model.stages: encoder, latent, routed lower decoder, windowed upper
decoder), each shrunk in width and context (128, the upper decoder's window) (the stages keep their layers and mixers) for a few steps on tiny
Shakespeare. Loading and round-tripping every baseline: tests/test_config.py."""
import json
import math
import os

import pytest

from foundry import catalog
from foundry.training.cli import sample_main
from foundry.training.loop import train
from tests.conftest import REPO

SMALL = ["model.n_embd=24", "model.n_head=2", "model.block_size=128", "model.dropout=0.0", "train.batch_size=2",
         "train.warmup_steps=1", "budget.steps=3", "eval.interval=1000", "eval.bytes=4096", "train.dtype=fp32"]


@pytest.mark.parametrize("name", ["nanogpt", "free_transformer"])
def test_architecture_baselines_train_and_sample(name, tmp_path, shared_data, capsys):
    cfg = catalog.load(os.path.join(REPO, "baselines", f"{name}.yaml"), SMALL)
    summary = train(cfg, tmp_path / "run")
    capsys.readouterr()
    assert summary["status"] == "done" and math.isfinite(summary["val_bpb"])
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = {key for row in rows for key in row}
    if name == "free_transformer":
        assert cfg.model.n_layer == 6 and "latent/kl" in logged  # the latent's KL term is logged
        assert {f"layer_{i}/router_use_{m}" for i in (1, 2, 3) for m in ("mha", "retention", "ssm")} <= logged
    assert sample_main([str(tmp_path / "run"), "--tokens", "12", "--prompt", "ROMEO:", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("ROMEO:")
