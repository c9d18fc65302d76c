"""agent.decide: the promotion rule on trial rows, and the rewritten baseline file."""
import pytest
import yaml

from agent.decide import judge
from agent.settings import PromotionSettings
from foundry.catalog import from_dict
from foundry.config import config_hash
from foundry.lineage.promotion import promoted_text


def rows(values, status="done"):
    return [{"id": f"t{seed}", "seed": seed, "metric": v, "status": status, "reason": None}
            for seed, v in values.items()]


def test_promote_near_miss_reject():
    rule = PromotionSettings(z=2.0, min_delta=0.001)
    base = rows({1: 1.30, 2: 1.31, 3: 1.29})
    kind, reason, d, table = judge(base, rows({1: 1.20, 2: 1.21, 3: 1.19}), rule)
    assert kind == "promote" and d.improvement == pytest.approx(0.1) and table[0] == (1, 1.30, 1.20)
    assert "threshold" in reason
    assert judge(base, rows({1: 1.29, 2: 1.31, 3: 1.285}), rule)[0] == "near_miss"
    assert judge(base, rows({1: 1.35, 2: 1.36, 3: 1.34}), rule)[0] == "reject"
    kind, reason, d, _ = judge(base, rows({1: 1.1, 2: None}, status="failed"), rule)
    assert kind == "reject" and d is None and "failed" in reason


def test_promoted_text_keeps_style_header_and_reproduces_the_candidate():
    original = "# my baseline\nname: tiny\nmodel:\n  n_layer: 2\nbudget:\n  steps: 10\n"
    baseline = from_dict(yaml.safe_load(original))
    candidate = from_dict({**yaml.safe_load(original), "model": {"n_layer": 2, "activation": "swiglu"}})
    text = promoted_text(original, baseline, candidate, "activation:swiglu")
    assert text.startswith("# my baseline\n")
    data = yaml.safe_load(text)
    assert data["model"] == {"n_layer": 2, "activation": "swiglu"}          # only what differs
    assert data["parent"] == f"tiny@{config_hash(baseline)}" and data["mutations"] == ["activation:swiglu"]
    assert config_hash(from_dict(data)) == config_hash(candidate)
