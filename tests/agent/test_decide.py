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
    rule = PromotionSettings(alpha=0.05, min_delta=0.001, confirm_seeds=3, max_confirm_seeds=0)
    base = rows({1: 1.30, 2: 1.31, 3: 1.29})
    kind, reason, d, table = judge(base, rows({1: 1.20, 2: 1.215, 3: 1.19}), rule)
    assert kind == "promote" and d.improvement == pytest.approx(0.295 / 3) and table[0] == (1, 1.30, 1.20)
    assert d.test == "paired t" and d.df == 2 and "threshold" in reason and "p " in reason
    assert judge(base, rows({1: 1.29, 2: 1.31, 3: 1.285}), rule)[0] == "near_miss"
    assert judge(base, rows({1: 1.35, 2: 1.36, 3: 1.34}), rule)[0] == "reject"
    kind, reason, d, _ = judge(base, rows({1: 1.1, 2: None}, status="failed"), rule)
    assert kind == "reject" and d is None and "failed" in reason


def test_sequential_confirmation_looks_again_when_unclear_and_splits_alpha():
    rule = PromotionSettings(alpha=0.05, min_delta=0.001, confirm_seeds=3, max_confirm_seeds=5)
    base = rows({1: 1.30, 2: 1.31, 3: 1.29, 4: 1.30, 5: 1.30})
    unclear = {1: 1.28, 2: 1.31, 3: 1.27}
    kind, reason, d, _ = judge(base[:3], rows(unclear), rule)
    assert kind == "more" and "look 1 of 2" in reason and d.alpha == pytest.approx(0.05 / 2)
    kind, reason, d, _ = judge(base, rows({**unclear, 4: 1.28, 5: 1.279}), rule)
    assert kind == "promote" and d.n_candidate == 5 and "look 2 of 2" in reason
    worse = judge(base[:3], rows({1: 1.30, 2: 1.32, 3: 1.29}), rule)   # not better at the first look: stop
    assert worse[0] == "reject"
    last = judge(base, rows({1: 1.28, 2: 1.32, 3: 1.27, 4: 1.31, 5: 1.30}), rule)
    assert last[0] == "near_miss"                                     # the cap: no more seeds
    fixed = PromotionSettings(alpha=0.05, confirm_seeds=3, max_confirm_seeds=0)
    assert judge(base[:3], rows(unclear), fixed)[0] == "near_miss"


def test_without_noise_control_min_delta_alone_decides_and_says_so():
    rule = PromotionSettings(confirm_seeds=0, no_noise_control=True, min_delta=0.01)
    kind, reason, d, _ = judge(rows({7: 1.30}), rows({7: 1.28}), rule)
    assert kind == "promote" and "NO NOISE CONTROL" in reason and d.threshold == 0.01
    assert judge(rows({7: 1.30}), rows({7: 1.295}), rule)[0] == "near_miss"


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
