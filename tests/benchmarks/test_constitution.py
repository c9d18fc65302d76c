"""The constitution task: accuracy, margins and the per-principle breakdown on the shipped held-out pairs."""
import pytest

from foundry.benchmarks.common import EvalOptions
from foundry.benchmarks.constitution import Constitution
from foundry.benchmarks.preference import pair_logprobs
from foundry.benchmarks.tasks import TASKS, run_tasks
from foundry.data import load_preference_pairs
from foundry.data.constitution import BUILTIN_CONSTITUTION, BUILTIN_PAIRS, load_constitution


def test_shipped_pairs_cover_every_principle_of_the_shipped_constitution():
    pairs = load_preference_pairs(BUILTIN_PAIRS)
    ids = [p["id"] for p in load_constitution(BUILTIN_CONSTITUTION)["principles"]]
    assert len(pairs) == 40 and sorted({p["principle"] for p in pairs}) == sorted(ids)
    assert all(sum(p["principle"] == i for p in pairs) == 5 for i in ids)
    assert all(p["chosen"] != p["rejected"] and p["prompt"].startswith("Human: ") for p in pairs)


def test_scores_follow_the_log_likelihoods_per_principle(tiny_lm, monkeypatch):
    monkeypatch.delenv("FOUNDRY_DATA", raising=False)          # runs on a fresh machine: shipped data only
    assert "constitution" in TASKS
    result = run_tasks(tiny_lm, ["constitution"], EvalOptions())["constitution"]
    pairs = load_preference_pairs(BUILTIN_PAIRS)
    expected = [c > r for c, r in pair_logprobs(tiny_lm, pairs)]
    assert [it["correct"] for it in result["items"]] == expected and result["n"] == 40
    assert result["score"] == pytest.approx(sum(expected) / 40)
    honest = [e for e, p in zip(expected, pairs) if p["principle"] == "honest"]
    assert result["per_principle"]["honest"] == {"n": 5, "acc": pytest.approx(sum(honest) / 5),
                                                 "logprob_margin": pytest.approx(
                                                     sum(it["logprob_margin"] for it, p in zip(result["items"], pairs)
                                                         if p["principle"] == "honest") / 5)}
    assert sum(v["n"] for v in result["per_principle"].values()) == 40 and "dpo_margin" not in result


def test_dpo_margin_against_a_reference_is_zero_for_the_model_itself(tiny_lm):
    result = Constitution(EvalOptions(reference=tiny_lm, limit=8)).evaluate(tiny_lm)
    assert result["n"] == 8 and result["dpo_margin"] == pytest.approx(0.0, abs=1e-5)
    assert all(v["dpo_margin"] == pytest.approx(0.0, abs=1e-5) for v in result["per_principle"].values())
