"""The `constitution` task: does the model prefer the response that follows the constitution?

    foundry eval RUN_DIR --tasks constitution [--ref BASE_RUN_DIR] [--path constitution=pairs.jsonl]

Data: held-out {prompt, chosen, rejected, principle} pairs; by default the file shipped with Foundry
(foundry/data/constitutions/foundry_small_pairs.jsonl, 40 pairs written for the project, five per
principle of foundry_small.yaml), so the task runs on a fresh machine without FOUNDRY_DATA.
Score: chosen-vs-rejected accuracy by log p(response | prompt) (chance 0.5). Details: the mean
log-likelihood margin log p(chosen) - log p(rejected); with a reference model (--ref, e.g. the model
before DPO) the DPO implicit reward margin beta * [(log p - log p_ref)(chosen) - (...)(rejected)];
and both per principle. Pairs without a `principle` count under "unlabelled".
"""
from __future__ import annotations

from foundry.benchmarks.common import EvalOptions, limited, make_result
from foundry.benchmarks.preference import pair_logprobs
from foundry.data import load_preference_pairs
from foundry.data.constitution import BUILTIN_PAIRS


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


class Constitution:
    name = "constitution"
    chance = 0.5

    def __init__(self, opts: EvalOptions):
        self.opts = opts

    def evaluate(self, lm) -> dict:
        path = self.opts.paths.get(self.name) or BUILTIN_PAIRS
        pairs = limited(load_preference_pairs(path), self.opts)
        policy = pair_logprobs(lm, pairs)
        reference = pair_logprobs(self.opts.reference, pairs) if self.opts.reference is not None else None
        items = []
        for i, (pair, (chosen, rejected)) in enumerate(zip(pairs, policy)):
            item = {"index": i, "principle": str(pair.get("principle", "unlabelled")), "correct": chosen > rejected,
                    "logprob_margin": round(chosen - rejected, 4)}
            if reference is not None:
                ref_chosen, ref_rejected = reference[i]
                item["dpo_margin"] = self.opts.dpo_beta * ((chosen - ref_chosen) - (rejected - ref_rejected))
            items.append(item)
        per_principle = {}
        for name in sorted({it["principle"] for it in items}):
            group = [it for it in items if it["principle"] == name]
            entry = {"n": len(group), "acc": _mean([it["correct"] for it in group]),
                     "logprob_margin": _mean([it["logprob_margin"] for it in group])}
            if reference is not None:
                entry["dpo_margin"] = _mean([it["dpo_margin"] for it in group])
            per_principle[name] = entry
        details = {"logprob_margin": _mean([it["logprob_margin"] for it in items]), "per_principle": per_principle}
        if reference is not None:
            details.update(dpo_margin=_mean([it["dpo_margin"] for it in items]), dpo_beta=self.opts.dpo_beta)
        acc = _mean([it["correct"] for it in items])
        return make_result(self.name, "acc", acc, self.chance, items, file=path, **details)
