"""Preference pairs (the "constitution" task): does the model prefer the chosen response?

    foundry eval RUN_DIR --tasks preference --path preference=pairs.jsonl [--ref BASE_RUN_DIR]

Data: JSONL with {"prompt", "chosen", "rejected"} per line (read by foundry.data.load_preference_pairs),
from --path preference=FILE or DATA/preference.jsonl. Score: the fraction of pairs where
log p(chosen | prompt) > log p(rejected | prompt) (sums over response tokens; chance 0.5). With a
reference model (--ref), also the DPO implicit reward margin, averaged over pairs:
    beta * [(log p(chosen) - log p_ref(chosen)) - (log p(rejected) - log p_ref(rejected))]
and the fraction of pairs where it is positive (reward accuracy).
"""
from __future__ import annotations

from foundry.benchmarks.common import EvalOptions, data_path, limited, make_result
from foundry.data import load_preference_pairs


def pair_logprobs(lm, pairs: list[dict]) -> list[tuple[float, float]]:
    """(log p(chosen | prompt), log p(rejected | prompt)) per pair, in one batched call."""
    requests = [(p["prompt"], p[key]) for p in pairs for key in ("chosen", "rejected")]
    scores = lm.loglikelihood(requests)
    return [(scores[2 * i][0], scores[2 * i + 1][0]) for i in range(len(pairs))]


class Preference:
    name = "preference"
    chance = 0.5

    def __init__(self, opts: EvalOptions):
        self.opts = opts

    def evaluate(self, lm) -> dict:
        path = data_path(self.opts, self.name, "preference.jsonl")
        pairs = limited(load_preference_pairs(path), self.opts)
        policy = pair_logprobs(lm, pairs)
        reference = pair_logprobs(self.opts.reference, pairs) if self.opts.reference is not None else None
        items, details = [], {}
        for i, (chosen, rejected) in enumerate(policy):
            item = {"index": i, "chosen_logprob": round(chosen, 4), "rejected_logprob": round(rejected, 4),
                    "correct": chosen > rejected}
            if reference is not None:
                ref_chosen, ref_rejected = reference[i]
                item["margin"] = self.opts.dpo_beta * ((chosen - ref_chosen) - (rejected - ref_rejected))
            items.append(item)
        if reference is not None:
            margins = [it["margin"] for it in items]
            details = {"dpo_margin": sum(margins) / len(margins), "dpo_beta": self.opts.dpo_beta,
                       "reward_acc": sum(m > 0 for m in margins) / len(margins)}
        acc = sum(it["correct"] for it in items) / max(1, len(items))
        return make_result(self.name, "acc", acc, self.chance, items, file=path, **details)
