"""The learned proposer (search.proposer: learned): choose mutations by what the ledger says they did.

    for p in propose(baseline, n, seed, ledger, baseline_hash, promotion_settings, skip=seen): ...

Every finished candidate trial in the ledger, screened or confirmed, is an observation: its
relative improvement over the baseline trial of the same generation and seed (a failed or
diverged trial counts as FAIL_EFFECT). An observation made against an older baseline weighs
DECAY^k, k = baseline changes since: estimates fade as the lineage moves on. Each mutation type
and each variant gets a Gaussian posterior of its effect (prior N(0, PRIOR_SD^2); a variant's
prior is centred on its type's estimate; the noise of one observation is estimated from the
baseline's own seed-to-seed spread). Slots are filled by Thompson sampling (draw an effect for
every type, take the best, then the same among its variants), with EXPLORE of the picks drawn
uniformly to keep exploring. Numeric knobs (NUMERIC: lr, warmup, weight_decay) have the
variants "up" and "down"; the size of the step comes from Optuna's TPE sampler fitted on this
baseline's trials of that knob in that direction ("lr:x1.37"). When two or more near-misses of
different types stand against the current baseline, the best two are stacked into one candidate
("a+b"). Configs already screened against this baseline, earlier baselines of the lineage (undoing
a promotion, e.g. context:x2 right after context:x0.5 won: the type's estimate would favour it),
no-ops and mutations that do not apply are never proposed. pick() chooses what the supervisor confirms: the best estimate among this
generation's candidates and those screened earlier against the same baseline and never confirmed
(waiting()), if it clears CONFIRM_MARGIN; a confirmation costs 6 to 12 trials, a screen one.
"""
from __future__ import annotations

import math
import random

from agent.proposer import Proposal
from foundry.errors import UserError
from foundry.mutate import MUTATIONS, apply

DECAY = 0.5           # weight of an observation per baseline change since it was made
PRIOR_SD = 0.01       # prior spread of a mutation's relative effect (1%)
DEFAULT_NOISE = 0.01  # relative noise of one trial until the ledger can estimate it
FAIL_EFFECT = -0.05   # a failed, diverged or timed-out candidate counts as 5% worse
EXPLORE = 0.1         # share of picks drawn uniformly among the untried arms
CONFIRM_MARGIN = 0.5    # confirm only an estimate above 0.5 x one trial's noise (a confirmation costs 6-12 trials)
MIN_FAMILIES = 5      # families with observations before the prior is estimated from them
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
        b = base.get((t["gen"], t["seed"]))
        if b is None:
            continue
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
                        "effect": effect / len(parts), "baseline": gens.get(t["gen"]), "gen": t["gen"]})
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


def _posterior(obs: list[dict], weights: list[float], noise_var: float, prior_mean: float, prior_var: float):
    precision = 1 / prior_var + sum(weights) / noise_var
    mean = (prior_mean / prior_var + sum(w * o["effect"] for w, o in zip(weights, obs)) / noise_var) / precision
    return mean, 1 / precision


class Estimates:
    """Posterior effect of every type and arm on the current lineage (computed once, then cached)."""

    def __init__(self, ledger, current_hash: str, lower_is_better: bool = True):
        self.obs, noise = observations(ledger, lower_is_better)
        ages = _ages(ledger, current_hash)
        self.current = current_hash
        self.noise_var = 2 * noise ** 2   # an observation is a difference of two trials
        self.groups: dict[tuple, list] = {}
        for o in self.obs:
            w = DECAY ** ages.get(o["baseline"], len(ages))
            self.groups.setdefault((o["family"], None), []).append((o, w))
            self.groups.setdefault((o["family"], o["arm"]), []).append((o, w))
        self.cache: dict[tuple, tuple] = {}
        self.prior_mean, self.prior_var = self._empirical_prior()

    def _empirical_prior(self) -> tuple[float, float]:
        """Empirical Bayes: the families seen so far say what an untried change is worth (most do nothing
        or harm), as the mean and spread of their means (the spread net of noise); defaults until
        MIN_FAMILIES are known."""
        means, noise = [], []
        for (family, arm), pairs in self.groups.items():
            total = sum(w for _, w in pairs)
            if arm is None and total > 0:
                means.append(sum(w * o["effect"] for o, w in pairs) / total)
                noise.append(self.noise_var / total)
        if len(means) < MIN_FAMILIES:
            return 0.0, PRIOR_SD ** 2
        mean = sum(means) / len(means)
        spread = sum((m - mean) ** 2 for m in means) / (len(means) - 1) - sum(noise) / len(noise)
        return mean, min(PRIOR_SD ** 2, max((PRIOR_SD / 4) ** 2, spread))

    def _of(self, key, prior_mean, prior_var):
        if key not in self.cache:
            pairs = self.groups.get(key, [])
            self.cache[key] = _posterior([o for o, _ in pairs], [w for _, w in pairs], self.noise_var,
                                         prior_mean, prior_var)
        return self.cache[key]

    def family_posterior(self, family: str):
        return self._of((family, None), self.prior_mean, self.prior_var)

    def arm_posterior(self, family: str, arm: str):
        return self._of((family, arm), self.family_posterior(family)[0], self.prior_var / 4)

    def label_mean(self, label: str, effect: float) -> float:
        """Estimated effect of a candidate with this label (registry labels, stacked with +); a label
        from elsewhere (a queue file) gets its screening `effect` shrunk by the prior."""
        parts = label.split("+")
        if not label or not all(":" in p and p.split(":")[0] in MUTATIONS for p in parts):
            return self.prior_mean + (effect - self.prior_mean) * self.prior_var / (self.prior_var + self.noise_var)
        total = 0.0
        for part in parts:
            mutation_type, variant = part.split(":", 1)
            arm = _variant(mutation_type, variant)
            total += self.arm_posterior(_family(mutation_type, arm), arm)[0]
        return total

    def current_obs(self, family: str, arm: str) -> list[dict]:
        return [o for o, _ in self.groups.get((family, arm), []) if o["baseline"] == self.current]


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
    everything the ledger knows about its kind of change), if it clears CONFIRM_MARGIN x one trial's
    noise. `candidates` are trial rows with `base_metric`, the screening baseline they ran against
    (this generation's, or an earlier one's, see waiting()). Returns (row or None, {id: estimate})."""
    est = Estimates(ledger, bhash, lower_is_better)
    scores = {}
    for t in candidates:
        b = t["base_metric"]
        effect = ((b - t["metric"]) if lower_is_better else (t["metric"] - b)) / abs(b)
        scores[t["id"]] = est.label_mean(t["mutation"] or "", effect)
    best = max(candidates, key=lambda t: scores[t["id"]], default=None)
    floor = CONFIRM_MARGIN * math.sqrt(est.noise_var / 2)   # in units of one trial's noise
    return (best if best is not None and scores[best["id"]] > floor else None), scores
