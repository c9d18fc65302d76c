"""The fusion objective: batches drawn from the mixture by weight, usage reported per source,
validation per source and on the mixture for any model, and a tokenizer the experts do not share refused."""
import copy

import numpy as np
import pytest
import torch

import foundry
from foundry.errors import UserError
from foundry.fusion.experts import build_from_experts
from foundry.fusion.objective import FusionObjective
from foundry.fusion.recipe import resolve
from tests.fusion.helpers import corpora, make_expert, two_expert_recipe


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    root = tmp_path_factory.mktemp("objective")
    experts = {"gpt2": make_expert(root / "gpt2", "gpt2", seed=1), "llama": make_expert(root / "llama", "llama", seed=2)}
    texts = corpora(root / "corpora")
    mixture = {"prose": {"source": texts["prose"], "weight": 3.0}, "code": {"source": texts["code"], "weight": 1.0}}
    cfg = resolve(two_expert_recipe(experts, "llama", texts, mixture=mixture, train={"batch_size": 8, "dtype": "fp32"}))
    return experts, cfg


def test_rows_follow_the_mixture_weights_and_usage_is_reported_per_source(setting):
    cfg = setting[1]
    objective = FusionObjective(cfg, torch.device("cpu"))
    model = build_from_experts(cfg, torch.device("cpu"), log=lambda *_: None)
    objective.start(model)
    rng, counts = np.random.default_rng(0), np.zeros(2)
    for _ in range(40):
        loss = objective.micro_loss(model, rng)
        counts += np.bincount(objective.rows.numpy(), minlength=2)
    assert torch.isfinite(loss) and counts.sum() == 40 * 8
    assert counts[0] / counts.sum() == pytest.approx(0.75, abs=0.05)  # prose weighs 3 of 4
    stats = objective.stats()
    for source in ("prose", "code"):
        for layer in (0, 1):
            shares = [stats[f"{source}/layer_{layer}/usage_{e}"] for e in ("gpt2", "llama")]
            assert float(sum(shares)) == pytest.approx(1.0)


def test_validation_per_source_and_on_the_mixture_for_any_model(setting):
    experts, cfg = setting
    objective = FusionObjective(cfg, torch.device("cpu"))
    gpt, _, _ = foundry.load(experts["gpt2"])  # an expert alone is scored on the same slices
    metrics = objective.evaluate(gpt)
    assert set(metrics) == {"val_loss", "val_bpb", "val_loss/prose", "val_bpb/prose", "val_loss/code", "val_bpb/code"}
    assert metrics["val_bpb"] == pytest.approx(0.75 * metrics["val_bpb/prose"] + 0.25 * metrics["val_bpb/code"])
    assert all(isinstance(v, float) for v in metrics.values())


def test_a_tokenizer_the_experts_do_not_share_is_refused(setting):
    cfg = copy.deepcopy(setting[1])
    cfg.data.tokenizer = "char"
    with pytest.raises(UserError, match="fusion.mixture.prose: data.tokenizer=char does not reproduce"):
        FusionObjective(cfg, torch.device("cpu"))


def test_several_processes_are_refused(setting):
    objective = FusionObjective(setting[1], torch.device("cpu"))
    with pytest.raises(UserError, match="train.strategy: a fused model trains in one process"):
        objective.shard(0, 2)
