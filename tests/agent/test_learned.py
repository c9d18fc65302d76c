"""agent/learned.py on a hand-made ledger: what the estimates learn, how they fade with baseline
changes, TPE steps for numeric knobs, stacking near-misses, and the picks it never makes."""
import os

from agent import learned
from agent.ledger import Ledger
from agent.settings import PromotionSettings
from foundry.catalog import from_dict
from foundry.config import config_hash
from foundry.mutate import apply

BASE = {"name": "b", "model": {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32},
        "train": {"lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 10}, "budget": {"steps": 10}}


def trial(gen, variant, mutation, seed, metric, status="done", role="screen", chash="h"):
    return {"id": f"g{gen}-{variant}-s{seed}", "gen": gen, "variant": variant, "role": role, "config_path": "x",
            "config_hash": chash, "parent": "", "mutation": mutation, "seed": seed, "run_dir": "r",
            "_metric": metric, "_status": status}


def fill(led: Ledger, gen: int, bhash: str, rows: list[dict]) -> None:
    led.start_generation(gen, bhash, "b.yaml", gen, "fp", [{k: v for k, v in r.items() if k[0] != "_"} for r in rows])
    for r in rows:
        led.mark_running(r["id"], "w", "cpu", 1, "fp")
        led.mark_finished(r["id"], r["_status"], r["_metric"], None, "", "", 1.0)
    led.set_phase(gen, "done")


def ledger(tmp_path) -> Ledger:
    led = Ledger(os.path.join(tmp_path, "ledger.sqlite"))
    for gen in (1, 2, 3):   # lr up helps by ~2%, ffn:moe hurts, attention does nothing; one diverges
        fill(led, gen, "A", [trial(gen, "baseline", "", gen, 2.00), trial(gen, "baseline", "", gen + 10, 2.01),
                             trial(gen, "v1", "lr:x2", gen, 1.96), trial(gen, "v2", "ffn:moe", gen, 2.06),
                             trial(gen, "v3", "attention:mla", gen, 2.00),
                             trial(gen, "v4", "loss:focal", gen, None, status="diverged")])
    return led


def test_estimates_learn_effects_and_fade_when_the_baseline_changes(tmp_path):
    led = ledger(tmp_path)
    est = learned.Estimates(led, "A")
    up, _ = est.arm_posterior("lr:up", "up")
    moe, _ = est.arm_posterior("ffn", "moe")
    mla, _ = est.arm_posterior("attention", "mla")
    assert up > 0.01 and moe < -0.01 and abs(mla) < 0.005
    assert est.arm_posterior("loss", "focal")[0] < -0.01                      # a diverged trial counts as bad
    assert est.arm_posterior("lr:down", "down")[0] == est.prior_mean == 0.0      # untried; 4 families < 5: prior 0
    later = learned.Estimates(led, "B")                                       # after a promotion: weight halves
    assert abs(later.arm_posterior("lr:up", "up")[0]) < abs(up)
    assert later.arm_posterior("lr:up", "up")[1] > est.arm_posterior("lr:up", "up")[1]
    noise_var = est.noise_var
    assert 0 < noise_var < 1e-3                                               # from the baseline's own seeds


def test_label_estimates_and_the_pick_for_confirmation(tmp_path):
    led = ledger(tmp_path)
    est = learned.Estimates(led, "A")
    assert est.label_posterior("lr:x1.5", 0.0)[0] > 0.01 and est.label_posterior("ffn:moe", 0.05)[0] < 0
    assert est.label_posterior("lr:x1.5+ffn:moe", 0)[0] < est.label_posterior("lr:x1.5", 0)[0]
    cands = [{"id": "a", "mutation": "ffn:moe", "metric": 1.99, "base_metric": 2.0},
             {"id": "b", "mutation": "lr:x3", "metric": 1.995, "base_metric": 2.0}]
    best, scores = learned.pick(led, "A", cands)
    assert best["id"] == "b" and scores["a"] < scores["b"]                   # what is known beats one lucky seed
    none, _ = learned.pick(led, "A", [cands[0]])
    assert none is None                                                      # a known-bad change is not confirmed
    waiting = learned.waiting(led, "A", 4)                                   # screened earlier, never confirmed
    assert {t["mutation"] for t in waiting} == {"lr:x2", "ffn:moe", "attention:mla"}
    assert all(t["base_metric"] == 2.0 for t in waiting) and learned.waiting(led, "A", 1) == []


def test_propose_favours_what_helped_never_repeats_and_tunes_numeric_steps(tmp_path):
    led = ledger(tmp_path)
    baseline = from_dict(BASE)
    bhash = config_hash(baseline)
    tried = apply(baseline, "attention", "mla")
    fill(led, 4, bhash, [trial(4, "baseline", "", 4, 2.0), trial(4, "v1", "attention:mla", 4, 2.0,
                                                                   chash=config_hash(tried))])
    counts = {"lr": 0, "ffn": 0}
    for seed in range(30):
        props = learned.propose(baseline, 3, seed, led, bhash, PromotionSettings())
        assert len(props) == 3 and len({config_hash(p.cfg) for p in props}) == 3
        assert all(config_hash(p.cfg) not in (bhash, config_hash(tried)) for p in props)
        for p in props:
            kind = p.mutation.split(":")[0]
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "lr":
                factor = float(p.mutation.split(":x")[1])
                assert 2 ** -2 <= factor <= 2 ** 2 and p.cfg.train.lr == baseline.train.lr * factor
            assert p.source.startswith("learned")
    assert counts["lr"] > 3 * counts["ffn"]                                   # exploits what helped
    assert len(counts) > 8                                                    # and keeps exploring


def test_two_near_misses_of_different_types_are_stacked(tmp_path):
    led = ledger(tmp_path)
    baseline = from_dict(BASE)
    bhash = config_hash(baseline)
    fill(led, 4, bhash, [trial(4, "baseline", "", 4, 2.0), trial(4, "v1", "lr:x2", 4, 1.97),
                         trial(4, "baseline", "", 40, 2.0, role="confirm"), trial(4, "v1", "lr:x2", 40, 1.99, role="confirm")])
    fill(led, 5, bhash, [trial(5, "baseline", "", 5, 2.0), trial(5, "v1", "width:x1.5", 5, 1.98)])
    for gen, label in ((4, "lr:x2"), (5, "width:x1.5")):
        led.record_decision(gen, "near_miss", "final", "done", variant="v1", mutation=label, improvement=0.01)
    props = learned.propose(baseline, 2, 0, led, bhash, PromotionSettings(), skip=lambda h: False)
    assert props[0].mutation == "lr:x2+width:x1.5" and props[0].source == "learned: stacked near-misses"
    assert props[0].cfg.model.n_embd == 48 and props[0].cfg.train.lr == 2e-3
    assert learned._ages(led, bhash)[bhash] == 0 and learned._ages(led, bhash)["A"] == 1
    again = learned.propose(baseline, 2, 0, led, bhash, PromotionSettings())
    assert [p.mutation for p in again] == [p.mutation for p in props]


def test_propose_never_undoes_a_promotion(tmp_path):
    """After context:x0.5 was promoted, the context family's estimate is high; context:x2 would give
    back the earlier baseline, already beaten, and is never proposed."""
    led = Ledger(os.path.join(tmp_path, "ledger.sqlite"))
    before = from_dict(BASE)
    after = apply(before, "context", "x0.5")
    fill(led, 1, config_hash(before), [trial(1, "baseline", "", 1, 2.0), trial(1, "baseline", "", 11, 2.01),
                                       trial(1, "v1", "context:x0.5", 1, 1.9, chash=config_hash(after))])
    assert config_hash(apply(after, "context", "x2")) == config_hash(before)
    labels = [p.mutation for seed in range(10)
              for p in learned.propose(after, 3, seed, led, config_hash(after), PromotionSettings())]
    assert labels and "context:x2" not in labels


def test_a_promotion_re_bases_its_own_type_and_decays_the_others(tmp_path):
    """lr:x2 promoted in generation 3: what lr steps did against baseline A says nothing about the
    next step from the new baseline B (the gain is taken), so the lr families start again from the
    prior; ffn:moe's harm still counts, at half weight."""
    led = ledger(tmp_path)
    led.record_decision(3, "promote", "committed", "done", variant="v1", mutation="lr:x2", improvement=0.02)
    before, after = learned.Estimates(led, "A"), learned.Estimates(led, "B")
    assert after.groups.get(("lr:up", "up")) is None and before.groups[("lr:up", "up")]
    assert after.arm_posterior("lr:up", "up")[0] == after.family_posterior("lr:up")[0] == after.prior_mean
    assert before.arm_posterior("ffn", "moe")[0] < after.arm_posterior("ffn", "moe")[0] < -0.005


def test_one_good_screen_of_a_variant_can_be_confirmed_in_a_family_that_did_little(tmp_path):
    """Variants of one type differ as much as types do: activation:relu2 helps where gelu did
    nothing. The arm's prior has the whole spread of effects, so a 2% screen (on a baseline whose
    seeds agree to 0.5%) is worth a confirmation; a numeric step is judged by its own trials too."""
    led = ledger(tmp_path)
    fill(led, 4, "A", [trial(4, "baseline", "", 4, 2.0), trial(4, "v1", "activation:gelu", 4, 2.0),
                       trial(4, "v2", "activation:relu2", 4, 1.96), trial(4, "v3", "lr:x1.2", 4, 2.0)])
    est = learned.Estimates(led, "A")
    relu2, gelu = est.part_posterior("activation:relu2")[0], est.part_posterior("activation:gelu")[0]
    assert relu2 > 0.01 > abs(gelu) and est.prior_var > (learned.PRIOR_SD / 2) ** 2
    best, _ = learned.pick(led, "A", [{"id": "r", "mutation": "activation:relu2", "metric": 1.96, "base_metric": 2.0}])
    assert best is not None
    small = [{"id": "q", "mutation": "model.activation=swiglu", "metric": 1.998, "base_metric": 2.0}]
    assert learned.pick(led, "A", small)[0]["id"] == "q"                   # a queued file's win: confirmed
    assert learned.pick(led, "A", [{**small[0], "mutation": "norm:layernorm"}])[0] is None   # a registry one: not
    # the step that did nothing, below the one that helped
    assert est.part_posterior("lr:x1.2")[0] < est.part_posterior("lr:x2")[0]
