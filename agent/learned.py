"""The learned proposer (search.proposer: learned): choose mutations by what the ledger says they did.

    for p in propose(baseline, n, seed, ledger, baseline_hash, promotion_settings, skip=seen): ...

Every finished candidate trial in the ledger, screened or confirmed, is an observation: its
relative improvement over the mean of every trial of the baseline it ran against (all its seeds;
a failed or diverged trial counts as FAIL_EFFECT). Estimates follow the lineage: an observation
made against an older baseline weighs DECAY^k, k = baseline changes since, and is dropped (re-based)
once a change of its own type was promoted since (after lr:x2.7 won, what earlier lr steps did says
nothing about the next one; after activation:glu won, relu2 was measured against the wrong
activation). Each mutation type ("family"; a numeric knob's steps up and down are two) and each
variant ("arm") gets a Gaussian posterior of its effect. The prior is empirical Bayes: the mean and
spread (net of noise, shrunk toward PRIOR_SD) of the arms seen so far; an arm's prior is centred on
its family's estimate with that whole spread, since variants of one type differ as much as types do.
Slots are filled by Thompson sampling (draw an effect for every family, take the best, then the
same among its arms), with EXPLORE of the picks drawn uniformly to keep exploring. Numeric knobs
(NUMERIC: lr, warmup, weight_decay) have the arms "up" and "down"; the size of the step comes from
Optuna's TPE sampler fitted on this baseline's trials of that knob in that direction ("lr:x1.37").
When two or more near-misses of different types stand against the current baseline, the best two
are stacked into one candidate ("a+b"). Configs already screened against this baseline, earlier
baselines of the lineage (undoing a promotion, e.g. context:x2 right after context:x0.5 won), no-ops
and mutations that do not apply are never proposed. pick() chooses what the supervisor confirms:
the best estimate among this generation's candidates and those screened earlier against the same
baseline and never confirmed (waiting()), if its posterior says it is an improvement with
probability >= CONFIRM_PROB: a confirmation costs 6 to 12 trials, a screen one, so a lucky screen
of a change that does nothing (most do) should not buy one. The rule is on the evidence, not on
the size of the effect: a margin on the posterior mean (it was 1.5 x one trial's noise) is never
cleared by a real effect smaller than it, however often that is measured, so a campaign whose
remaining gains were all below it stalled for good (6 of 40 simulated ones did). 0.7, 0.8 and 0.9
measured alike within the simulation's noise (tests/agent/test_simulation.py).
"""
from __future__ import annotations

import math
import random
from statistics import NormalDist

from agent.proposer import Proposal
from foundry.errors import UserError
from foundry.mutate import MUTATIONS, apply

DECAY = 0.5           # weight of an observation per baseline change since it was made
PRIOR_SD = 0.01       # prior spread of a mutation's relative effect (1%)
DEFAULT_NOISE = 0.01  # relative noise of one trial until the ledger can estimate it
FAIL_EFFECT = -0.05   # a failed, diverged or timed-out candidate counts as 5% worse
EXPLORE = 0.1         # share of picks drawn uniformly among the untried arms
CONFIRM_PROB = 0.8    # confirm only a candidate that is an improvement with posterior probability >= 0.8
MIN_ARMS = 5          # arms with observations before the prior's mean is estimated from them
PRIOR_COUNT = 5       # pseudo-arms of spread PRIOR_SD in the estimate of the prior's spread
NUMERIC = {"lr": 2.0, "warmup": 2.0, "weight_decay": 2.0}   # knob -> largest |log2 factor| TPE may take


def _variant(mutation_type: str, variant: str) -> str:
    """The arm a label belongs to: numeric knobs group their xF variants as up / down."""
    if mutation_type in NUMERIC and variant.startswith("x"):
        try:
            return "up" if float(variant[1:]) > 1 else "down"
        except ValueError:
            return variant
    return variant


def _family(mutation_type: str, arm: str) -> str:
    """What pools evidence: the type, except that a knob's steps up and down are two ideas ("lr:up")."""
    return f"{mutation_type}:{arm}" if arm in ("up", "down") else mutation_type


def observations(ledger, lower_is_better: bool = True) -> tuple[list[dict], float]:
    """([{type, arm, label, effect, baseline, gen}], relative noise sd of one trial) from the ledger."""
    gens = {g["gen"]: g["baseline_hash"] for g in ledger.generations()}
    trials = ledger.trials()
    base = {(t["gen"], t["seed"]): t["metric"] for t in trials
            if t["variant"] == "baseline" and t["status"] == "done" and t["metric"]}
    by_baseline: dict[str, list[float]] = {}
    for (gen, _), metric in base.items():
        by_baseline.setdefault(gens.get(gen), []).append(metric)
    out = []
    for t in trials:
        if t["variant"] == "baseline" or t["role"] == "transfer" or t["status"] in ("queued", "running"):
            continue
        ref = by_baseline.get(gens.get(t["gen"]))
        if (t["gen"], t["seed"]) not in base or not ref:
            continue
        # against the mean of every trial of that baseline (all its seeds): a noise variance of
        # sigma^2 (1 + 1/n) instead of the 2 sigma^2 of one same-seed pair, hence the weight
        b, weight = sum(ref) / len(ref), 2 / (1 + 1 / len(ref))
        if t["status"] == "done" and t["metric"] is not None and math.isfinite(t["metric"]):
            effect = ((b - t["metric"]) if lower_is_better else (t["metric"] - b)) / abs(b)
        elif t["status"] in ("failed", "diverged", "timeout"):
            effect = FAIL_EFFECT
        else:
            continue
        parts = [p for p in (t["mutation"] or "").split("+") if ":" in p]
        for part in parts:
            mutation_type, variant = part.split(":", 1)
            arm = _variant(mutation_type, variant)
            out.append({"type": mutation_type, "arm": arm, "family": _family(mutation_type, arm), "label": part,
                        "effect": effect / len(parts), "baseline": gens.get(t["gen"]), "gen": t["gen"],
                        "weight": weight})
    spreads = [(v, sum(vs) / len(vs)) for vs in by_baseline.values() if len(vs) >= 2 for v in vs]
    if len(spreads) >= 3:
        noise = math.sqrt(sum((v / m - 1) ** 2 for v, m in spreads) / max(1, len(spreads) - len(by_baseline)))
    else:
        noise = DEFAULT_NOISE
    return out, max(noise, 1e-4)


def _ages(ledger, current: str) -> dict:
    """baseline hash -> baseline changes from it to the current one (along the generations)."""
    order = []
    for g in ledger.generations():
        if not order or order[-1] != g["baseline_hash"]:
            order.append(g["baseline_hash"])
    if not order or order[-1] != current:
        order.append(current)
    return {h: len(order) - 1 - i for i, h in enumerate(order)}


def _posterior(pairs, noise_var: float, prior_mean: float, prior_var: float) -> tuple[float, float]:
    """Normal-normal update: [(observation, weight)] of noise variance noise_var / weight each."""
    precision = 1 / prior_var + sum(w for _, w in pairs) / noise_var
    mean = (prior_mean / prior_var + sum(w * o["effect"] for o, w in pairs) / noise_var) / precision
    return mean, 1 / precision


def _spread(groups: list[list], noise_var: float, centre: float) -> float:
    """Method-of-moments variance of the true effects of `groups` (lists of (obs, weight)) around
    `centre`: the spread of their weighted means net of the noise in them, shrunk toward PRIOR_SD^2
    with PRIOR_COUNT pseudo-groups (a few groups say little about a variance)."""
    terms = []
    for pairs in groups:
        total = sum(w for _, w in pairs)
        mean = sum(w * o["effect"] for o, w in pairs) / total
        terms.append((mean - centre) ** 2 - noise_var / total)
    n = len(terms)
    observed = max(0.0, sum(terms) / n) if n else 0.0
    return (PRIOR_COUNT * PRIOR_SD ** 2 + n * observed) / (PRIOR_COUNT + n)


class Estimates:
    """Posterior effect of every family and arm on the current lineage (computed once, then cached).

    Empirical Bayes: the arms (variants) seen so far say what an untried one is worth, as the mean
    and the spread (net of noise) of their effects: most changes do nothing or harm, a few help. An
    arm's prior is centred on its family's estimate, with that whole spread: variants of one type
    differ as much as types do (activation:relu2 helps, gelu does nothing), so one good screen can
    be enough to confirm a variant of a family that did little so far. A family's estimate pools
    its arms' observations, each noisier by the arms' spread (they are different changes)."""

    def __init__(self, ledger, current_hash: str, lower_is_better: bool = True):
        self.obs, noise = observations(ledger, lower_is_better)
        ages = _ages(ledger, current_hash)
        self.current = current_hash
        self.noise_var = 2 * noise ** 2   # an observation is a difference of two trials
        promoted = [(d["gen"], {part.split(":")[0] for part in (d["mutation"] or "").split("+")})
                    for d in ledger.decisions("promote") if d["state"] == "committed"]
        self.groups: dict[tuple, list] = {}
        for o in self.obs:
            if o["baseline"] != current_hash and any(g >= o["gen"] and o["type"] in types for g, types in promoted):
                continue   # re-based: a promotion of this type since made the observation's baseline moot
            w = o["weight"] * DECAY ** ages.get(o["baseline"], len(ages))
            self.groups.setdefault((o["family"], None), []).append((o, w))
            self.groups.setdefault((o["family"], o["arm"]), []).append((o, w))
        self.cache: dict[tuple, tuple] = {}
        arms = [pairs for (_, arm), pairs in self.groups.items() if arm is not None and sum(w for _, w in pairs) > 0]
        means = [sum(w * o["effect"] for o, w in pairs) / sum(w for _, w in pairs) for pairs in arms]
        self.prior_mean = sum(means) / len(means) if len(means) >= MIN_ARMS else 0.0
        self.prior_var = _spread(arms, self.noise_var, self.prior_mean)

    def _of(self, key, prior_mean, noise_var):
        if key not in self.cache:
            self.cache[key] = _posterior(self.groups.get(key, []), noise_var, prior_mean, self.prior_var)
        return self.cache[key]

    def family_posterior(self, family: str):
        return self._of((family, None), self.prior_mean, self.noise_var + self.prior_var)

    def arm_posterior(self, family: str, arm: str):
        return self._of((family, arm), self.family_posterior(family)[0], self.noise_var)

    def label_posterior(self, label: str, effect: float) -> tuple[float, float]:
        """Posterior (mean, variance) of the effect of a candidate with this label (registry labels,
        stacked with +: the sum of its parts'); a label from elsewhere (a queue file) gets its
        screening `effect` shrunk by the prior."""
        if not from_registry(label):
            shrink = self.prior_var / (self.prior_var + self.noise_var)
            return self.prior_mean + (effect - self.prior_mean) * shrink, self.noise_var * shrink
        parts = [self.part_posterior(part) for part in label.split("+")]
        return sum(m for m, _ in parts), sum(v for _, v in parts)

    def part_posterior(self, part: str) -> tuple[float, float]:
        """One registry label's estimate: its arm's, then, for a numeric knob's step (lr:x1.7 of the
        arm lr:up), updated by the trials of that very step: steps of one direction differ."""
        mutation_type, variant = part.split(":", 1)
        arm = _variant(mutation_type, variant)
        family = _family(mutation_type, arm)
        mean, var = self.arm_posterior(family, arm)
        if arm == variant:
            return mean, var
        own = [(o, w) for o, w in self.groups.get((family, arm), []) if o["label"] == part]
        return _posterior(own, self.noise_var, mean, self.prior_var)

    def current_obs(self, family: str, arm: str) -> list[dict]:
        return [o for o, _ in self.groups.get((family, arm), []) if o["baseline"] == self.current]


def from_registry(label: str) -> bool:
    """Is this candidate's label made of mutation-registry labels (not a queue file's or a command's)?"""
    return bool(label) and all(":" in p and p.split(":")[0] in MUTATIONS for p in label.split("+"))


def arms() -> dict[str, list[tuple[str, str]]]:
    """family -> [(type, arm)]: registry variants; a numeric knob's xF variants become up / down."""
    out: dict[str, list] = {}
    for mutation_type, (_, variants) in MUTATIONS.items():
        names = [_variant(mutation_type, v) for v in variants] + (["up", "down"] if mutation_type in NUMERIC else [])
        for arm in dict.fromkeys(names):
            out.setdefault(_family(mutation_type, arm), []).append((mutation_type, arm))
    return out


def _tpe_variant(est: Estimates, mutation_type: str, arm: str, rng: random.Random) -> str:
    """The step of a numeric knob: Optuna TPE over log2(factor) in this direction, fitted on this baseline."""
    import optuna
    from optuna.distributions import FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    limit = NUMERIC[mutation_type]
    low, high = (0.1, limit) if arm == "up" else (-limit, -0.1)
    space = {"log2_factor": FloatDistribution(low, high)}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(
        seed=rng.randrange(2 ** 31), n_startup_trials=3, constant_liar=True))
    for o in est.current_obs(_family(mutation_type, arm), arm):
        try:
            x = math.log2(float(o["label"].split(":", 1)[1][1:]))
        except (ValueError, IndexError):
            continue
        if low <= x <= high:
            study.add_trial(optuna.trial.create_trial(params={"log2_factor": x}, distributions=space,
                                                      value=o["effect"]))
    x = study.ask(space).params["log2_factor"]
    return f"x{2 ** x:.3g}"


def _stack(baseline, ledger, bhash: str, est: Estimates):
    """The best two near-misses of different types against this baseline (single mutations whose
    estimate is positive), applied together."""
    gens = {g["gen"] for g in ledger.generations() if g["baseline_hash"] == bhash}
    misses = sorted((d for d in ledger.decisions("near_miss") if d["gen"] in gens and d["mutation"]),
                    key=lambda d: -(d["improvement"] or 0))
    picked, types = [], set()
    for d in misses:
        label = d["mutation"]
        if "+" in label or ":" not in label:
            continue
        mutation_type, variant = label.split(":", 1)
        arm = _variant(mutation_type, variant)
        if mutation_type not in types and est.arm_posterior(_family(mutation_type, arm), arm)[0] > 0:
            picked.append(label)
            types.add(mutation_type)
        if len(picked) == 2:
            break
    if len(picked) < 2:
        return None
    cfg = baseline
    try:
        for label in "+".join(picked).split("+"):
            cfg = apply(cfg, *label.split(":", 1))
    except UserError:
        return None
    return Proposal(cfg, "+".join(picked), "learned: stacked near-misses")


def propose(baseline, n: int, seed: int, ledger, bhash: str, promotion, skip=lambda h: False) -> list[Proposal]:
    """Up to n new candidates for `baseline`, chosen as the module docstring says."""
    from foundry.config import config_hash

    rng = random.Random(seed)
    est = Estimates(ledger, bhash, promotion.lower_is_better)
    out, seen = [], {bhash} | {g["baseline_hash"] for g in ledger.generations()}   # earlier baselines lost

    def fresh(cfg) -> bool:
        h = config_hash(cfg)
        if h in seen or skip(h) or ledger.tried_against(h, bhash):
            return False
        seen.add(h)
        return True

    stacked = _stack(baseline, ledger, bhash, est)
    if stacked and fresh(stacked.cfg):
        out.append(stacked)
    remaining = arms()
    while len(out) < n and any(remaining.values()):
        families = [f for f, a in remaining.items() if a]
        if rng.random() < EXPLORE:
            family = rng.choice(families)
            mutation_type, arm = rng.choice(remaining[family])
        else:
            draws = {f: rng.gauss(m, math.sqrt(v)) for f in families for m, v in [est.family_posterior(f)]}
            family = max(draws, key=draws.get)
            arm_draws = {a: rng.gauss(m, math.sqrt(v)) for a in remaining[family]
                         for m, v in [est.arm_posterior(family, a[1])]}
            mutation_type, arm = max(arm_draws, key=arm_draws.get)
        remaining[family].remove((mutation_type, arm))
        variant = _tpe_variant(est, mutation_type, arm, rng) if arm in ("up", "down") else arm
        try:
            cfg = apply(baseline, mutation_type, variant)
        except UserError:   # does not apply here, or changes nothing
            continue
        if fresh(cfg):
            mean, var = est.arm_posterior(family, arm)
            out.append(Proposal(cfg, f"{mutation_type}:{variant}", f"learned: est {100 * mean:+.2f}%"
                                f" +- {100 * math.sqrt(var):.2f}"))
    return out


def waiting(ledger, bhash: str, gen: int) -> list[dict]:
    """Candidates screened against this baseline in earlier generations and never confirmed, each with
    `base_metric`, its generation's screening baseline: one unlucky or marginal screen need not end an idea."""
    gens = [g["gen"] for g in ledger.generations() if g["baseline_hash"] == bhash]
    rows = ledger.trials(gen=gens) if gens else []
    confirmed = {t["config_hash"] for t in rows if t["role"] == "confirm"}
    bases = {(t["gen"], t["seed"]): t["metric"] for t in rows if t["variant"] == "baseline" and t["role"] == "screen"
             and t["status"] == "done" and t["metric"] is not None}
    return [{**t, "base_metric": bases[t["gen"], t["seed"]]} for t in rows
            if t["gen"] < gen and (t["gen"], t["seed"]) in bases and t["role"] == "screen" and t["variant"] != "baseline"
            and t["status"] == "done" and t["metric"] is not None and t["config_hash"] not in confirmed]


def pick(ledger, bhash: str, candidates: list[dict], lower_is_better: bool = True):
    """The screened candidate to confirm: the highest estimated effect (its screening trial and
    everything the ledger knows about its kind of change) among those whose posterior probability
    of a true improvement is at least CONFIRM_PROB. A candidate from a queue file or proposer.command
    (asked for by a person or a program) keeps its precedence: it is confirmed if its estimate is
    positive at all. `candidates` are trial rows with `base_metric`, the screening baseline they ran
    against (this generation's, or an earlier one's, see waiting()). Returns (row or None, {id: estimate})."""
    est = Estimates(ledger, bhash, lower_is_better)
    scores, sure = {}, {}
    for t in candidates:
        b = t["base_metric"]
        effect = ((b - t["metric"]) if lower_is_better else (t["metric"] - b)) / abs(b)
        mean, var = est.label_posterior(t["mutation"] or "", effect)
        scores[t["id"]] = mean
        sure[t["id"]] = NormalDist().cdf(mean / math.sqrt(var))   # P(true effect > 0)
    eligible = [t for t in candidates if (sure[t["id"]] >= CONFIRM_PROB if from_registry(t["mutation"] or "")
                                          else scores[t["id"]] > 0)]
    return max(eligible, key=lambda t: scores[t["id"]], default=None), scores
