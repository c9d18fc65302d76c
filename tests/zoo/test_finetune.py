"""Fine-tuning imported models: train.init_from with LoRA tokenizes the data with the checkpoint's
tokenizer; mutations that would change the starting weights' shape, components or tokenizer are
refused with the reason; and the supervisor runs a generation on an imported baseline.

    python -m pytest tests/zoo/test_finetune.py -q
"""
import json
import os
import random

import pytest
import torch
import yaml

from foundry import catalog
from foundry.config import to_dict
from foundry.errors import UserError
from foundry.mutate import MUTATIONS, apply, propose
from foundry.training.loop import train
from foundry.weights.checkpoint import load_model
from tests.agent.agent_fixtures import foundry, make_repo
from tests.zoo.hf_models import TEXT


def finetune_config(run, text_file, **train):
    data = to_dict(load_model(run)[2])
    data["name"] = "ft"
    data["model"]["block_size"] = 32
    data["train"].update({"init_from": run, "lora_rank": 4, "lr": 3e-3, "warmup_steps": 0, "batch_size": 4, **train})
    data["data"]["source"] = text_file
    data["budget"] = {"steps": 3}
    data["eval"] = {"interval": 1000, "bytes": 256}   # 2 x 4 windows of 32 characters
    return data


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(TEXT * 5)
    return str(path)


def test_lora_fine_tuning_of_an_imported_model(imported, text_file, tmp_path):
    data = finetune_config(imported["qwen2"], text_file)
    summary = train(catalog.from_dict(data), tmp_path / "ft", log=lambda *a: None)
    assert summary["status"] == "done" and summary["data"]["tokenizer"] == "hf"
    base, tokenizer, _ = load_model(imported["qwen2"])
    tuned, tuned_tokenizer, cfg = load_model(tmp_path / "ft")
    assert tuned_tokenizer == tokenizer and cfg.train.lora_rank == 4
    state = tuned.state_dict()
    frozen = state["blocks.0.attn.q_proj.base_layer.weight"]
    assert torch.equal(frozen, base.state_dict()["blocks.0.attn.q_proj.weight"])
    assert state["blocks.0.attn.q_proj.lora_B.default.weight"].abs().sum() > 0  # the adapters trained


def test_another_tokenizer_is_refused_with_the_fix(imported, text_file, tmp_path):
    data = finetune_config(imported["llama"], text_file)
    data["data"].update(tokenizer="byte", tokenizer_path="")
    with pytest.raises(UserError, match=f"data.tokenizer=hf data.tokenizer_path={imported['llama']}"):
        train(catalog.from_dict(data), tmp_path / "ft", log=lambda *a: None)


@pytest.mark.parametrize("mutation,variant,reason", [
    ("depth", "plus1", "fixes the architecture; model.n_layer would change from 2 to 3"),
    ("attention", "mha", "fixes the architecture; model.n_kv_head would change from 2 to 0"),
    ("activation", "gelu", "fixes the architecture; model.activation"),
    ("tokenizer", "byte", "fixes the architecture; model.vocab_size"),
    ("context", "x2", "fixes the weights' shapes; position.wpe.weight would change from (128, 64) to (256, 64)"),
])
def test_mutations_that_change_the_starting_weights_are_refused(mutation, variant, reason, imported, text_file):
    family = "gpt2" if mutation == "context" else "qwen2"
    data = finetune_config(imported[family], text_file)
    data["model"]["block_size"] = 128  # gpt2's learned positions: a table of 128 rows
    cfg = catalog.from_dict(data)
    with pytest.raises(UserError, match="does not apply") as refused:
        apply(cfg, mutation, variant)
    assert reason in str(refused.value)


def test_fine_tuning_mutations_apply_and_propose_offers_only_them(imported, text_file):
    cfg = catalog.from_dict(finetune_config(imported["qwen2"], text_file))
    assert apply(cfg, "context", "x2").model.block_size == 64  # rope: no weight depends on the context
    assert apply(cfg, "lora_rank", "16").train.lora_rank == 16
    proposed = propose(cfg, 50, random.Random(0))
    kinds = {label.split(":")[0] for _, label in proposed}
    assert kinds and kinds <= {"lr", "batch_size", "warmup", "grad_clip", "weight_decay", "betas", "ema", "lora_rank",
                               "lora_alpha", "lora_dropout", "context", "dropout", "loss", "curriculum",
                               "packing", "filters", "loss_on",
                               "prune"}  # data mutations (issue 16) and pruning (issue 13) fine-tune too
    assert {"lora_rank", "lora_alpha", "lora_dropout", "lr"} <= kinds
    assert set(MUTATIONS) - kinds >= {"depth", "width", "attention", "tokenizer"}


def test_the_supervisor_runs_a_generation_on_an_imported_baseline(imported, text_file, tmp_path):
    data = finetune_config(imported["llama"], text_file, lr=1e-4)
    repo = make_repo(str(tmp_path / "repo"), data)
    result = foundry(repo, "run", "--baseline", "baselines/tiny.yaml", "--generations", "1", "--population", "1",
                     "--workers", "2", "--confirm-seeds", "0", "--no-noise-control", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    trials = json.loads(foundry(repo, "runs", "--json").stdout)
    assert trials and all(t["status"] == "done" for t in trials), trials
    for path in os.listdir(os.path.join(repo.working_tree_dir, "experiments", "tiny", "gen_0001")):
        if path.endswith(".yaml"):
            variant = yaml.safe_load(open(os.path.join(repo.working_tree_dir, "experiments", "tiny", "gen_0001", path)))
            assert variant["train"]["init_from"] == imported["llama"]
            assert variant["model"]["n_layer"] == 2 and variant["data"]["tokenizer"] == "hf"
