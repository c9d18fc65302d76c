"""Fusion training through Foundry's trainer: only adapters and routers in the optimizer, each at its
own learning rate; experts bitwise unchanged; usage and entropy logged; resume onto the same curve;
the checkpoint (safetensors) loads back through foundry.load as the model that was trained."""
import json
import os

import pytest
import torch
from safetensors import safe_open

import foundry
from foundry.fusion.recipe import resolve
from foundry.training.loop import setup, train, train_step
from foundry.weights.tensors import TensorReader
from tests.fusion.helpers import two_expert_recipe


def expert_tensor(path, name):
    reader = TensorReader.from_folder(os.path.join(path, "checkpoint"))
    stored = set(reader.names())
    return reader.get(name if name in stored else {"wte.weight": "lm_head.weight"}.get(name, name))


@pytest.mark.parametrize("base,adapter,router", [("llama", "linear", "pooled"), ("gpt2", "bottleneck", "token")])
def test_only_adapters_and_routers_train_and_experts_stay_bitwise(experts, texts, tmp_path, base, adapter, router):
    cfg = resolve(two_expert_recipe(experts, base, texts, adapter, router))
    session = setup(cfg, tmp_path / "run", log=lambda *_: None)
    model = session.model
    in_optimizer = {id(p) for g in session.optimizer.param_groups for p in g["params"]}
    assert in_optimizer == {id(p) for p in model.adapter_parameters() + model.router_parameters()}
    scales = sorted({g["lr_scale"] for g in session.optimizer.param_groups})
    assert scales == pytest.approx(sorted({3e-3 / cfg.train.lr, 1e-2 / cfg.train.lr}))
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    losses = [train_step(session)[0] for _ in range(6)]
    assert all(map(torch.isfinite, torch.tensor(losses)))
    lrs = {g["lr_scale"]: g["lr"] for g in session.optimizer.param_groups}
    assert lrs[1e-2 / cfg.train.lr] == pytest.approx(lrs[3e-3 / cfg.train.lr] * 1e-2 / 3e-3)
    table = model.frozen_sources()
    for name, p in model.named_parameters():
        if name in before:
            continue
        expert, source = table[name]
        assert torch.equal(p, expert_tensor(experts[expert], source)), name  # bitwise
    changed = [n for n, p in model.named_parameters() if n in before and not torch.equal(p, before[n])]
    assert any(".adapter_" in n for n in changed) and any(".router." in n for n in changed)


def test_fused_run_logs_usage_resumes_and_loads_back(experts, texts, tmp_path):
    cfg = resolve(two_expert_recipe(experts, "llama", texts, "bottleneck", "token", budget={"steps": 6},
                                   eval={"interval": 3, "bytes": 512}))
    full = train(cfg, tmp_path / "full", log=lambda *_: None)
    assert full["status"] == "done" and set(full["eval"]) >= {"val_bpb/prose", "val_bpb/code", "val_bpb"}
    rows = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    step_rows = [r for r in rows if "loss" in r]
    for key in ("layer_0/usage_llama", "layer_1/usage_gpt2", "layer_0/entropy", "layer_1/gate",
                "layer_0/balance"):
        assert all(key in r for r in step_rows), key
    assert any(k.startswith("prose/layer_1/usage_") for r in step_rows for k in r)
    # interrupted after 3 steps, then resumed: the same losses as the uninterrupted run
    assert train(cfg, tmp_path / "cut", stop_after_steps=3, log=lambda *_: None)["status"] == "interrupted"
    resumed = train(cfg, tmp_path / "cut", resume=True, log=lambda *_: None)
    assert resumed["train_loss"] == pytest.approx(full["train_loss"], rel=1e-5)
    assert resumed["val_bpb"] == pytest.approx(full["val_bpb"], rel=1e-5)
    # the checkpoint: safetensors holding experts, adapters and routers; foundry.load rebuilds it
    with safe_open(tmp_path / "full" / "checkpoint" / "model.safetensors", "pt") as f:
        names = set(f.keys())
    assert any(".adapter_in." in n for n in names) and any(".router.gate" in n for n in names)
    model, tokenizer, loaded_cfg = foundry.load(tmp_path / "full")
    assert type(model).__name__ == "FusedModel" and loaded_cfg.fusion == cfg.fusion
    from foundry.fusion.objective import FusionObjective
    metrics = FusionObjective(loaded_cfg, torch.device("cpu"), tokenizer).evaluate(model)
    assert metrics["val_bpb"] == pytest.approx(full["val_bpb"], rel=1e-6)
