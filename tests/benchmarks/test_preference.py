"""Preference pairs: chosen-over-rejected accuracy by log-likelihood, and the DPO reward margin
against a reference model."""
import pytest

from foundry.benchmarks.common import EvalOptions
from foundry.benchmarks.preference import Preference, pair_logprobs


def test_accuracy_follows_the_log_likelihoods(data_env, bigram):
    lm = bigram({":": " ", " ": "y", "y": "e", "e": "s"})  # after "A:" it prefers " yes"
    result = Preference(EvalOptions()).evaluate(lm)
    assert [it["correct"] for it in result["items"]] == [True, False]  # pair 2 chose " no"
    assert result["score"] == 0.5 and result["centered"] == 0.0 and "dpo_margin" not in result


def test_dpo_margin_against_a_reference(data_env, bigram):
    policy = bigram({":": " ", " ": "n", "n": "o"})
    reference = bigram({":": " ", " ": "y", "y": "e", "e": "s"})
    opts = EvalOptions(reference=reference, dpo_beta=0.5)
    result = Preference(opts).evaluate(policy)
    pairs = [{"prompt": "Q: be kind?\nA:", "chosen": " yes", "rejected": " no"},
             {"prompt": "Q: lie?\nA:", "chosen": " no", "rejected": " yes"}]
    (c0, r0), (c1, r1) = pair_logprobs(policy, pairs)
    (rc0, rr0), (rc1, rr1) = pair_logprobs(reference, pairs)
    margins = [0.5 * ((c0 - rc0) - (r0 - rr0)), 0.5 * ((c1 - rc1) - (r1 - rr1))]
    assert result["dpo_margin"] == pytest.approx(sum(margins) / 2)
    assert result["reward_acc"] == 0.5 and margins[1] > 0 > margins[0]
    same = Preference(EvalOptions(reference=policy)).evaluate(policy)
    assert same["dpo_margin"] == pytest.approx(0.0)


def test_missing_file_is_named(tmp_path):
    from foundry.errors import UserError

    with pytest.raises(UserError, match="preference: file .*nope.jsonl not found"):
        Preference(EvalOptions(paths={"preference": str(tmp_path / "nope.jsonl")})).evaluate(None)
