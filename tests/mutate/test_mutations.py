"""Every registered mutation type and variant: differs from its input, validates, carries lineage."""
import os
import random

import pytest
import yaml

from foundry.catalog import from_dict
from foundry.config import config_hash, to_dict
from foundry.errors import UserError
from foundry.mutate import (
    MUTATIONS,
    NoOpMutation,
    apply,
    describe,
    parse_label,
    propose,
)
from tests.conftest import REPO

BASE = {"name": "base", "budget": {"tokens": 20000}}
with open(os.path.join(REPO, "baselines", "free_transformer.yaml")) as f:
    PIPELINE_MODEL = yaml.safe_load(f)["model"]   # model.stages: encoder, latent, routed, windowed
ALL_VARIANTS = [(t, v) for t, (_, variants) in MUTATIONS.items() for v in variants]


def _bases(mutation_type, variant):
    """Configs on which the mutation can act: the default, one fine-tuning with LoRA, one with a chat source
    (and one rendering it as chatml), a student distilled from a teacher, the Free Transformer pipeline
    (baselines/free_transformer.yaml's model), and each of those moved by
    another variant of the same type (so 'rmsnorm' has a 'layernorm')."""
    roots = [from_dict(BASE), from_dict({**BASE, "name": "lora", "train": {"lora_rank": 8, "init_from": "runs/pretrained"}}),
             from_dict({**BASE, "name": "chat", "data": {"source": "chat.jsonl"}}),
             from_dict({**BASE, "name": "sft", "data": {"source": "chat.jsonl", "format": "chatml"}}),
             from_dict({**BASE, "name": "student", "train": {"distill": {"teacher": "runs/teacher"}}}),
             from_dict({**BASE, "name": "pipeline", "model": PIPELINE_MODEL})]
    yield from roots
    for root in roots:
        for other in MUTATIONS[mutation_type][1]:
            if other != variant:
                try:
                    yield apply(root, mutation_type, other)
                except UserError:
                    pass


@pytest.mark.parametrize("mutation_type,variant", ALL_VARIANTS, ids=[f"{t}:{v}" for t, v in ALL_VARIANTS])
def test_every_mutation_changes_validates_and_records_lineage(mutation_type, variant):
    reasons = []
    for base in _bases(mutation_type, variant):
        before = to_dict(base)
        try:
            child = apply(base, mutation_type, variant)
        except UserError as e:
            reasons.append(str(e))
            continue
        assert to_dict(base) == before, "the input config was modified"
        assert config_hash(child) != config_hash(base)
        assert from_dict(to_dict(child)) == child  # round-trips through validation
        assert child.parent == base.name
        assert child.mutations == [*base.mutations, f"{mutation_type}:{variant}"]
        assert child.name == f"{base.name}-{mutation_type}_{variant}"
        return
    pytest.fail(f"{mutation_type}:{variant} applies to no test base: {reasons[:3]}")


def test_registry_is_large_enough_and_described():
    assert len(MUTATIONS) >= 21
    for entry in describe():
        assert entry["variants"] and entry["description"]


def test_unknown_type_and_variant_list_valid_ones():
    cfg = from_dict(BASE)
    with pytest.raises(UserError, match="valid: attention"):
        apply(cfg, "nope", "x")
    with pytest.raises(UserError, match="valid: mha, gqa_1kv"):
        apply(cfg, "attention", "nope")
    with pytest.raises(UserError, match="TYPE:VARIANT"):
        parse_label("attention")


def test_no_op_and_invalid_results_are_refused_with_a_reason():
    cfg = from_dict(BASE)
    with pytest.raises(NoOpMutation, match="changes nothing"):
        apply(cfg, "norm", cfg.model.norm)
    with pytest.raises(UserError, match="lora_rank is 0"):
        apply(cfg, "lora_alpha", "32")
    with pytest.raises(UserError, match="init_from"):
        apply(cfg, "lora_rank", "8")
    odd = from_dict({**BASE, "model": {"n_head": 3, "n_embd": 96}})
    with pytest.raises(UserError, match="invalid config.*n_kv_head"):
        apply(odd, "attention", "gqa_2kv")
    one = from_dict({**BASE, "model": {"n_layer": 1}})
    with pytest.raises(UserError, match="n_layer=1"):
        apply(one, "depth", "minus1")


def test_mutations_stack():
    cfg = from_dict(BASE)
    child = apply(apply(cfg, "lr", "x2"), "depth", "plus1")
    assert child.mutations == ["lr:x2", "depth:plus1"]
    assert child.parent == "base-lr_x2"
    assert child.train.lr == pytest.approx(2 * cfg.train.lr) and child.model.n_layer == cfg.model.n_layer + 1


@pytest.mark.parametrize("mutation", [("batch_size", "x2"), ("batch_size", "x0.5"), ("context", "x2"),
                                      ("context", "x0.5")])
def test_tokens_per_step_mutations_keep_a_step_budget_in_tokens(mutation):
    cfg = from_dict({**BASE, "budget": {"steps": 100}})
    child = apply(cfg, *mutation)
    assert child.tokens_per_step != cfg.tokens_per_step
    assert child.budget.steps * child.tokens_per_step == cfg.budget.steps * cfg.tokens_per_step


def test_propose_gives_distinct_valid_labelled_variants_deterministically():
    cfg = from_dict(BASE)
    proposals = propose(cfg, 12, random.Random(7))
    assert len(proposals) == 12
    assert len({config_hash(c) for c, _ in proposals}) == 12
    assert config_hash(cfg) not in {config_hash(c) for c, _ in proposals}
    assert len({lab.split(":")[0] for _, lab in proposals}) == 12  # spread over types
    for child, lab in proposals:
        assert child.mutations == [lab] and child.parent == "base"
        from_dict(to_dict(child))
    again = propose(cfg, 12, random.Random(7))
    assert [lab for _, lab in again] == [lab for _, lab in proposals]


def test_propose_returns_what_exists_when_asked_for_too_many():
    proposals = propose(from_dict(BASE), 10_000, random.Random(0))
    assert 20 < len(proposals) < 10_000
