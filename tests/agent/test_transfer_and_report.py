"""promotion.transfer (agent/transfer.py) and `foundry report` (agent/campaign_report.py, agent/plots.py),
on the real supervisor loop with the stub trainer of tests/agent/simulation.py."""
import json
import os
import subprocess
import sys

import pytest

from agent.transfer import scaled
from foundry.catalog import from_dict
from foundry.errors import UserError
from tests.agent.agent_fixtures import queue
from tests.agent.simulation import Campaign, Landscape

CHANGE = "model.activation=swiglu"   # the label a queued `model: {activation: swiglu}` gets


def campaign(tmp_path, scaled_effect: float) -> Campaign:
    land = Landscape(noise=0.002, effects={CHANGE: -0.05}, scaled_effects={CHANGE: scaled_effect})
    c = Campaign(str(tmp_path), land, population=1, transfer={"model.n_layer": "x2"})
    queue(c.repo, "swiglu.yaml", "model:\n  activation: swiglu\n")
    return c


def test_a_win_that_holds_at_scale_is_committed_with_the_transfer_line(tmp_path):
    c = campaign(tmp_path, -0.04)
    c.run(1)
    d = c.ledger().decision(1)
    assert d["kind"] == "promote" and d["state"] == "committed"
    transfer = c.ledger().trials(gen=1, role="transfer")
    assert {t["variant"] for t in transfer} == {"baseline@transfer", "v01-swiglu@transfer"}
    body = c.repo.head.commit.message
    assert "Transfer (model.n_layer x2): passed" in body and "Compute: baseline" in body
    scaled_cfg = os.path.join(c.repo.working_tree_dir, transfer[0]["config_path"])
    assert "n_layer: 2" in open(scaled_cfg).read()
    c.close()


def test_a_win_that_fails_at_scale_is_a_near_miss_with_its_reason(tmp_path):
    c = campaign(tmp_path, +0.03)
    c.run(1)
    d = c.ledger().decision(1)
    assert d["kind"] == "near_miss" and "failed: the candidate is not better at this scale" in d["reason"]
    assert not c.repo.head.commit.message.startswith("promote")
    c.close()


def test_scaled_configs():
    cfg = from_dict({"model": {"n_layer": 3, "n_embd": 64}, "budget": {"steps": 10}})
    assert scaled(cfg, {"model.n_layer": "x2", "model.n_embd": "96"}).model.n_layer == 6
    assert scaled(cfg, {"train.lr": "x0.5"}).train.lr == pytest.approx(cfg.train.lr / 2)
    with pytest.raises(UserError, match="unknown config key"):
        scaled(cfg, {"model.layers_count": "x2"})


def test_report_renders_plots_and_a_page(tmp_path):
    land = Landscape(noise=0.005, effects={CHANGE: -0.05})
    c = Campaign(str(tmp_path), land, population=2)
    queue(c.repo, "swiglu.yaml", "model:\n  activation: swiglu\n")
    c.run(4)
    folder = c.campaign_dir
    c.close()
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "foundry.cli", "report", folder, "--out", str(out), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert {"baseline.png", "promotions.png", "effects.png", "report.md", "report.html"} <= set(data["files"])
    for name in data["files"]:
        assert (out / name).stat().st_size > 0
    assert open(out / "baseline.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert data["promotions"][0]["mutation"] == CHANGE and data["promotions"][0]["lo"] > 0
    assert data["compute"]["train_tokens"] > 0 and data["generations"] == 4
    assert any(e["type"] == CHANGE and e["mean"] > 0 for e in data["effects"])
    md = (out / "report.md").read_text()
    assert "## Promotions" in md and CHANGE in md and "![baseline](baseline.png)" in md
    assert "<img src='effects.png'" in (out / "report.html").read_text()
    missing = subprocess.run([sys.executable, "-m", "foundry.cli", "report", str(tmp_path / "nope")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no campaign ledger" in missing.stderr


def test_report_shows_the_baseline_a_last_promotion_made(tmp_path):
    """A campaign that ends right after a promotion never measured the new baseline in a generation
    of its own: the report takes it from the promoted candidate's confirmation seeds."""
    from agent.campaign_report import gather
    c = Campaign(str(tmp_path), Landscape(noise=0.005, effects={CHANGE: -0.05}), population=1)
    queue(c.repo, "swiglu.yaml", "model:\n  activation: swiglu\n")
    c.run(1)
    data = gather(c.ledger())
    c.close()
    (promotion,) = data["promotions"]
    first, last = data["baseline"]
    assert first["source"] == "baseline" and first["gen"] == 1
    assert last["source"] == "confirmation" and last["gen"] == 2 and last["n"] >= 3
    assert abs(last["mean"] - promotion["after"]) < 1e-9 and last["mean"] < first["mean"] - 0.03
    assert last["hours"] >= first["hours"]
