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


def test_lines_fit_an_80_column_terminal_and_erase_exactly_what_was_drawn(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    progress = {"fraction": 0.25, "loss": 3.5}
    long_id = "g0001-v03-attention_gqa_1kv_and_some_more_words-s2337"
    line = progress_line(long_id, "cpu0", 0.0, progress, columns=80)
    assert len(line) <= 79 and "25.0%" in line and "loss 3.5000" in line and line.startswith("  cpu0   g0001")
    screen = io.StringIO()
    view = View(str(tmp_path / "c.log"), stream=screen, tty=True)
    assert view.columns() == 80
    view.update([line, "x" * 200])      # a line wider than the terminal is cut, never wrapped
    view.log("next")
    view.close()
    drawn = [row for row in screen.getvalue().replace("\x1b[2A\x1b[J", "\n").split("\n") if row]
    assert max(len(row) for row in drawn) <= 79 and "\x1b[2A\x1b[J" in screen.getvalue()


def test_without_a_terminal_running_trials_get_a_progress_line_now_and_then(tmp_path, monkeypatch):
    import agent.view
    plain = io.StringIO()
    view = View(str(tmp_path / "d.log"), stream=plain, tty=False)
    view.update(["  cpu0 g0001-baseline-s1 [##] 10.0% loss 3.0"])
    assert plain.getvalue() == ""                 # not before PLAIN_PROGRESS_S has passed
    monkeypatch.setattr(agent.view, "PLAIN_PROGRESS_S", 0.0)
    view.update(["  cpu0 g0001-baseline-s1 [##] 10.0% loss 3.0", "  cpu1 g0001-v01-s1 [#] 5.0% starting"])
    view.close()
    lines = plain.getvalue().splitlines()
    assert len(lines) == 2 and all(" progress cpu" in line for line in lines)
    assert "progress" not in (tmp_path / "d.log").read_text()   # the log file keeps events only


def test_status_shows_no_interval_for_one_seed():
    from agent.report import status_table
    data = {"supervisor": {"pid": None, "running": False}, "generation": None, "trials": {"done": 3},
            "throughput": {"trials_per_hour": 1.0}, "decisions": {}, "running": [], "promotions": [],
            "campaign": "tiny", "metric": "val_bpb",
            "leaderboard": [{"mean": 1.5, "stderr": None, "seeds": 1, "gen": 1, "variant": "v01", "mutation": "x"},
                            {"mean": 1.6, "stderr": 0.01, "seeds": 2, "gen": 1, "variant": "baseline",
                             "mutation": "(baseline)"}]}
    table = status_table(data)
    assert "1.5000 (1 seed)" in table and "+- 0.0000" not in table and "1.6000 +- 0.0100 (2 seeds)" in table


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
                {"promotion.max_confirm_seeds": 2}, {"promotion.alpha": 1.5}, {"promotion.alpha": float("nan")},
                {"search.trial_timeout_s": 5.0}, {"promotion.min_delta": float("inf")}):
        with pytest.raises(UserError):
            settings_mod.load(path, bad)
    with pytest.raises(UserError, match=r"^--trial-timeout: must be in \[30, 1e7\], got 5.0$"):
        settings_mod.load(path, {"search.trial_timeout_s": 5.0}, {"search.trial_timeout_s": "--trial-timeout"})
    assert settings_mod.Settings().search.keep_checkpoints == "baseline"
    assert settings_mod.load(path, {"promotion.confirm_seeds": 0, "promotion.no_noise_control": True}) \
        .promotion.confirm_seeds == 0
    old = tmp_path / "old.yaml"                                  # a campaign.yaml of before the t-test
    old.write_text("promotion:\n  confirm_seeds: 2\n  z: 2.0\n")
    assert settings_mod.load(str(old)).promotion.alpha == 0.0228
    assert settings_mod.load(path, {"promotion.transfer": {"model.n_layer": 8}}).promotion.transfer == \
        {"model.n_layer": "8"}
