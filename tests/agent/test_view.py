"""agent.view and agent.settings: live bars on a terminal, plain lines otherwise, a log file
always; campaign.yaml typed and checked."""
import io
import json

import pytest

from agent import settings as settings_mod
from agent.view import View, progress_line
from foundry.errors import UserError
from foundry.io import read_progress


def test_plain_lines_without_a_terminal_and_bars_with_one(tmp_path):
    plain = io.StringIO()
    view = View(str(tmp_path / "a.log"), stream=plain, tty=False)
    view.update(["  cpu0 trial [###] 10%"])
    view.log("gen 1: hello")
    view.close()
    assert plain.getvalue().endswith("gen 1: hello\n") and "\x1b[" not in plain.getvalue()
    assert "gen 1: hello" in (tmp_path / "a.log").read_text()

    screen = io.StringIO()
    view = View(str(tmp_path / "b.log"), stream=screen, tty=True)
    view.update(["bar one", "bar two"])
    view.log("a line")                 # printed above the bars, which are redrawn below it
    view.close()
    text = screen.getvalue()
    assert text.index("bar one") < text.index("\x1b[2A\x1b[J") < text.index("a line")
    assert text.count("bar two") == 2 and "bar" not in (tmp_path / "b.log").read_text()


def test_progress_line_reads_the_trainers_progress(tmp_path):
    assert read_progress(str(tmp_path)) == {}
    (tmp_path / "progress.json").write_text(json.dumps({"fraction": 0.5, "loss": 2.25, "step": 10}))
    line = progress_line("g0001-v01-s1", "cpu1", 0.0, read_progress(str(tmp_path)))
    assert "cpu1" in line and "50.0%" in line and "loss 2.2500" in line and "#" * 12 in line


def test_campaign_settings_round_trip_and_errors(tmp_path):
    path = str(tmp_path / "campaign.yaml")
    s = settings_mod.load(path, {"search.population": 8, "proposer.command": "cat"})
    settings_mod.save(s, path)
    again = settings_mod.load(path)
    assert again.search.population == 8 and again.proposer.command == "cat" and again.worker_count() == "auto"
    assert settings_mod.load(path, {"search.workers": "3"}).worker_count() == 3
    for bad in ({"search.populaton": 2}, {"search.population": 0}, {"promotion.z": "high"},
                {"search.keep_checkpoints": "some"}, {"search.workers": "many"}, {"search.proposer": "clever"},
                {"promotion.confirm_seeds": 1}, {"promotion.confirm_seeds": 0}, {"promotion.equal": "time"},
                {"promotion.max_confirm_seeds": 2}, {"promotion.alpha": 1.5}):
        with pytest.raises(UserError):
            settings_mod.load(path, bad)
    assert settings_mod.load(path, {"promotion.confirm_seeds": 0, "promotion.no_noise_control": True}) \
        .promotion.confirm_seeds == 0
    old = tmp_path / "old.yaml"                                  # a campaign.yaml of before the t-test
    old.write_text("promotion:\n  confirm_seeds: 2\n  z: 2.0\n")
    assert settings_mod.load(str(old)).promotion.alpha == 0.0228
    assert settings_mod.load(path, {"promotion.transfer": {"model.n_layer": 8}}).promotion.transfer == \
        {"model.n_layer": "8"}
