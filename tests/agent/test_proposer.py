"""Where candidates come from (agent/proposer.py) and which ones the supervisor lets through
(Supervisor.collect): the queue first, then proposer.command, then the mutation registry;
never a config that failed twice, was already screened against this baseline, or is invalid;
never a change of seed, budget or (unless asked) evaluation; every candidate trains the
baseline's tokens (agent/compute.py)."""
import io
import json
import os
import re

import pytest
import yaml

from agent import compute, proposer
from agent.loop import Supervisor
from agent.settings import Settings
from agent.view import View
from foundry.catalog import from_dict, load
from foundry.config import config_hash, dumps, to_dict
from foundry.errors import UserError
from foundry.mutate import apply
from tests.agent.agent_fixtures import queue, repo  # noqa: F401


def trial(tid, chash):
    return dict(id=tid, gen=1, variant=tid, role="screen", config_path="x.yaml", config_hash=chash,
                parent="tiny@0", mutation="m", seed=1, run_dir=f"runs/{tid}")


def test_collect_orders_sources_and_filters(repo, tmp_path):
    root = repo.working_tree_dir
    campaign = os.path.join(root, "experiments", "tiny")
    baseline_path = os.path.join(root, "baselines", "tiny.yaml")
    baseline = load(baseline_path)
    bhash = config_hash(baseline)
    files = {"a_failed_twice.yaml": "train:\n  lr: 3.0e-3\n", "b_tried.yaml": "train:\n  lr: 1.0e-3\n",
             "c_invalid.yaml": "model:\n  n_head: 3\n", "d_fresh.yaml": "train:\n  lr: 2.0e-3\n",
             "e_same_as_baseline.yaml": "name: renamed\n"}
    for name, text in files.items():
        queue(repo, name, text)
    hashes = {name: config_hash(proposer.variant_from_mapping(baseline, yaml.safe_load(text), name))
              for name, text in files.items() if name != "c_invalid.yaml"}
    stdin_copy = tmp_path / "stdin.json"
    settings = Settings()
    settings.search.population = 3
    settings.search.proposer = "random"
    settings.proposer.command = f"cat > {stdin_copy}; printf 'train:\\n  warmup_steps: 7\\n'"
    out = io.StringIO()
    sup = Supervisor(repo, baseline_path, campaign, settings, View(os.path.join(campaign, "log"), stream=out))
    led = sup.ledger
    led.start_generation(1, bhash, "baselines/tiny.yaml", 1, "fp",
                         [trial("f1", hashes["a_failed_twice.yaml"]),
                          trial("f2", hashes["a_failed_twice.yaml"]), trial("t1", hashes["b_tried.yaml"])])
    for tid, status in (("f1", "failed"), ("f2", "timeout"), ("t1", "done")):
        led.mark_running(tid, "cpu0", "cpu", 1, "fp")
        led.mark_finished(tid, status, 1.0, None, "x", "", 1.0)

    proposals = sup.collect(baseline, bhash, 2)
    assert [p.source for p in proposals] == ["queue:d_fresh.yaml", "proposer", "mutate"]
    assert proposals[0].label == "d_fresh" and proposals[0].mutation == "train.lr=0.002"
    assert proposals[1].cfg.train.warmup_steps == 7
    assert ":" in proposals[2].mutation                      # a registry label, TYPE:VARIANT
    log = out.getvalue()
    assert "failed twice before" in log and "already screened against this baseline" in log
    assert "same as the baseline" in log
    left = sorted(os.listdir(os.path.join(campaign, "queue")))
    assert left == ["d_fresh.yaml", "rejected"]              # consumed only once the ledger holds it
    reason = open(os.path.join(campaign, "queue", "rejected", "c_invalid.yaml.reason")).read()
    assert "n_head" in reason
    board = json.loads(stdin_copy.read_text())
    assert board["campaign"] == "tiny" and board["baseline"]["hash"] == bhash
    assert board["leaderboard"][0]["variant"] == "t1"
    sup.ledger.close()


def test_a_failing_proposer_command_costs_only_a_log_line(repo):
    baseline = load(os.path.join(repo.working_tree_dir, "baselines", "tiny.yaml"))
    lines = []
    assert proposer.from_command("exit 3", {}, baseline, 10, lines.append) == []
    assert proposer.from_command("echo '[not: yaml'", {}, baseline, 10, lines.append) == []
    assert proposer.from_command("echo 'model: {n_head: 3}'", {}, baseline, 10, lines.append) == []
    assert len(lines) == 3 and "exited 3" in lines[0]


def test_queue_refuses_seed_budget_and_eval_changes_and_labels_every_key(repo):
    baseline = load(os.path.join(repo.working_tree_dir, "baselines", "tiny.yaml"))
    whole = yaml.safe_load(dumps(baseline))          # a whole config, as `foundry mutate` writes one
    whole["model"]["activation"] = "swiglu"
    whole["budget"] = {"steps": 500}
    whole["mutations"] = ["activation:swiglu"]
    cases = {"seed.yaml": ({"train": {"seed": 5}}, "train.seed"),
             "whole.yaml": (whole, "budget.steps (20 -> 500)"),
             "eval.yaml": ({"eval": {"bytes": 100}}, "eval.bytes")}
    for name, (data, key) in cases.items():
        with pytest.raises(UserError, match=re.escape(key)):
            proposer.variant_from_mapping(baseline, data, name)
    asked = proposer.variant_from_mapping(baseline, {"eval": {"bytes": 100}, "allow_changes": ["eval.bytes"]}, "a")
    assert asked.eval.bytes == 100
    whole["budget"] = dict(baseline.budget.__dict__)
    whole["model"]["n_layer"] = 3                      # not explained by its one mutation label
    cfg = proposer.variant_from_mapping(baseline, whole, "whole.yaml")
    assert proposer.mutation_of(baseline, cfg) == "model.activation=swiglu, model.n_layer=3"
    cfg = apply(baseline, "activation", "swiglu")
    assert proposer.mutation_of(baseline, cfg) == "activation:swiglu"


def test_every_candidate_trains_the_baselines_tokens_or_flops():
    base = from_dict({"model": {"block_size": 64, "vocab_size": 256}, "train": {"batch_size": 8},
                      "budget": {"steps": 100}})
    longer = from_dict({**to_dict(base), "model": {**to_dict(base)["model"], "block_size": 128}})
    cfg, note = compute.equalize(base, longer, "tokens")
    assert cfg.budget.steps == 50 and "100 steps -> 50 steps" in note
    assert compute.budget_tokens(cfg) == compute.budget_tokens(base)
    deeper = from_dict({**to_dict(base), "model": {**to_dict(base)["model"], "n_layer": 4}})
    cfg, note = compute.equalize(base, deeper, "flops")
    ratio = compute.flops_per_token(base, 0) / compute.flops_per_token(deeper, 0)
    assert cfg.budget.steps == round(100 * ratio) < 100 and "flops" in note
    assert compute.equalize(base, base, "tokens") == (base, "")
    spent, why = compute.check([{"train_tokens": 1000, "train_flops": 1e9}], [{"train_tokens": 2000}], "tokens")
    assert "unequal compute" in why and spent["candidate"]["tokens"] == 2000
    assert "1,000 tokens, 1e+09 FLOPs" in compute.describe(spent)
    assert compute.check([{"train_tokens": 1000}], [{"train_tokens": 1010}], "tokens")[1] == ""


def test_collect_rescales_a_queued_context_change_and_never_offers_a_seed_only_change(repo):
    root = repo.working_tree_dir
    campaign = os.path.join(root, "experiments", "tiny")
    baseline_path = os.path.join(root, "baselines", "tiny.yaml")
    baseline = load(baseline_path)
    queue(repo, "a_longer.yaml", "model:\n  block_size: 64\n")
    settings = Settings()
    settings.search.population = 2
    out = io.StringIO()
    sup = Supervisor(repo, baseline_path, campaign, settings, View(os.path.join(campaign, "log"), stream=out))
    first, second = sup.collect(baseline, config_hash(baseline), 1)
    assert first.cfg.model.block_size == 64 and first.cfg.budget.steps == baseline.budget.steps // 2
    assert "budget 20 steps -> 10 steps" in first.note
    assert second.source.startswith("learned")
    sup.ledger.close()
