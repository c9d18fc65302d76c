"""`foundry merge` as people and scripts use it: --dry-run, --json, progress, --methods; and the
merged checkpoint through `foundry sample` and `foundry eval`."""
import json
import os

import pytest

from foundry.cli import main
from foundry.merge.cli import Progress
from tests.merge.conftest import method_recipe, write_recipe


def test_dry_run_lists_the_plan_and_writes_nothing(runs, tmp_path, capsys):
    path = write_recipe(tmp_path, method_recipe("ties", runs))
    assert main(["merge", path, "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "blocks.2.attn.q_proj.weight" in out and "'density': 0.6" in out and "nothing written" in out
    assert not os.path.exists(tmp_path / "out")


def test_json_summary_and_the_merged_checkpoint_samples_and_evaluates(runs, tmp_path, capsys, tiny_text):
    path = write_recipe(tmp_path, method_recipe("dare_ties", runs))
    assert main(["merge", path, "--out", str(tmp_path / "out"), "--json", "--seed", "5"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "dare_ties" and summary["seed"] == 5 and summary["tensors"] == 23
    assert json.loads((tmp_path / "out" / "merge.json").read_text())["seed"] == 5
    assert main(["sample", str(tmp_path / "out"), "--prompt", "ab", "--tokens", "4", "--temperature", "0"]) == 0
    assert capsys.readouterr().out.startswith("ab")
    assert main(["eval", str(tmp_path / "out"), "--tasks", "bpb", "--path", f"bpb={tiny_text}", "--limit", "4",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tasks"]["bpb"]["score"] > 0


def test_a_human_summary_and_progress_lines_off_a_terminal(runs, tmp_path, capsys):
    path = write_recipe(tmp_path, method_recipe("linear", runs))
    assert main(["merge", path, "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "merged 23/23 tensors" in captured.err and "method: linear" in captured.out and "peak_rss_mb:" in captured.out


def test_the_progress_bar_redraws_on_a_terminal():
    class Terminal:
        text = ""

        def isatty(self):
            return True

        def write(self, s):
            self.text += s

        def flush(self):
            pass
    screen = Terminal()
    progress = Progress(screen)
    for i in range(1, 5):
        progress(i, 4, f"t{i}")
    assert screen.text.count("\r") == 4 and "4/4" in screen.text and screen.text.endswith("\n")


def test_methods_lists_every_method_with_its_parameters(capsys):
    from foundry.merge import METHODS
    assert main(["merge", "--methods"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in METHODS) and "density[per model]=1.0" in out
    with pytest.raises(SystemExit) as exit_code:
        main(["merge", "--help"])
    assert exit_code.value.code == 0 and "methods: linear, slerp" in capsys.readouterr().out
