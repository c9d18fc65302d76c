"""Where candidates come from (agent/proposer.py) and which ones the supervisor lets through
(Supervisor.collect): the queue first, then proposer.command, then the mutation registry;
never a config that failed twice, was already screened against this baseline, or is invalid."""
import io
import json
import os

import yaml

from agent import proposer
from agent.loop import Supervisor
from agent.settings import Settings
from agent.view import View
from foundry.catalog import load
from foundry.config import config_hash
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
