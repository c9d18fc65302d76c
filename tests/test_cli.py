"""The `foundry` command end to end: help, train, validate, sample, and bad input."""
import json
import os
import re
import subprocess
import sys

import pytest

from foundry.cli import COMMANDS
from tests.conftest import REPO, tiny_overrides

TINY = os.path.join(REPO, "baselines", "tiny.yaml")


def foundry(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "foundry.cli", *map(str, args)], cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=300)


def test_top_level_help_is_for_users_and_lists_every_subcommand_but_internal_ones():
    from foundry.cli import INTERNAL
    result = foundry("--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: foundry COMMAND")
    for name in COMMANDS:
        assert (f"  {name} " in result.stdout) == (name not in INTERNAL)
    assert "train-rung" in INTERNAL
    version = foundry("--version")
    assert version.returncode == 0 and version.stdout.startswith("foundry ")


def test_help_texts_are_for_users():
    """Config overrides are optional; every option of evolve says what it is."""
    train = foundry("train", "--help").stdout
    assert "[KEY=VALUE ...]" in train
    no_arguments = foundry("train").stderr
    assert "required: config" in no_arguments and "overrides" not in no_arguments
    assert "--population POPULATION" in (evolve := foundry("evolve", "--help").stdout)
    assert "members alive at once" in evolve and "config the first population mutates" in evolve


def every_subcommand() -> list[list[str]]:
    """Each COMMANDS entry, and each subcommand of those that have their own (data, zoo)."""
    from foundry.data.cli import DATA_COMMANDS
    from foundry.zoo.cli import ZOO_COMMANDS
    nested = {"data": DATA_COMMANDS, "zoo": ZOO_COMMANDS}
    return [[name] for name in COMMANDS] + [[name, sub] for name, subs in nested.items() for sub in subs]


def options_without_help(text: str) -> list[str]:
    """Option and argument entries of argparse help that have no description: an entry line with
    nothing after its invocation, not followed by an indented continuation."""
    lines, missing, inside = text.splitlines(), [], False
    for i, line in enumerate(lines):
        if re.match(r"^\S", line):   # a section header: only argparse's argument sections hold entries
            inside = line in ("positional arguments:", "options:", "optional arguments:")
        elif inside and re.match(r"^  \S", line) and not re.search(r"\S {2,}\S", line.strip()):
            follows = lines[i + 1] if i + 1 < len(lines) else ""
            if not re.match(r"^ {4,}\S", follows):
                missing.append(line.strip())
    return missing


def test_the_help_check_finds_an_option_without_help():
    import argparse
    p = argparse.ArgumentParser(prog="foundry x")
    p.add_argument("--said", help="what it does")
    p.add_argument("--long-option-name-without-room", help="described on the next line")
    p.add_argument("--bare")
    p.add_argument("source")
    assert options_without_help(p.format_help()) == ["source", "--bare BARE"]


@pytest.mark.parametrize("argv", every_subcommand(), ids=" ".join)
def test_every_subcommand_has_help_for_each_option(argv, capsys):
    from foundry.cli import main
    try:
        code = main([*argv, "--help"])
    except SystemExit as e:   # argparse's --help exits
        code = e.code
    out = capsys.readouterr().out
    assert code == 0 and "usage: foundry" in out, out
    text = " ".join(out.split())   # no default said twice, none as "default: None"
    assert "(default: None)" not in text and not re.search(r"\(default[^)]*\) \(default", text)
    assert options_without_help(out) == [], out


def test_train_sample_and_validate(tiny_text, tmp_path):
    out = tmp_path / "run"
    result = foundry("train", TINY, *tiny_overrides(tiny_text, 5), "--out", out)
    assert result.returncode == 0, result.stderr
    tail = result.stdout.strip().splitlines()[-11:]
    assert tail[0] == "status: done" and tail[-1].startswith("config_hash: ")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 5
    # a second train into the same folder must say how to continue instead of overwriting
    again = foundry("train", TINY, *tiny_overrides(tiny_text, 5), "--out", out)
    assert again.returncode == 2 and "--resume" in again.stderr
    resumed = foundry("train", TINY, *tiny_overrides(tiny_text, 7), "--out", out, "--resume")
    assert resumed.returncode == 0 and "resumed" in resumed.stdout
    sample = foundry("sample", out, "--prompt", "the quick", "--tokens", "12", "--temperature", "0")
    assert sample.returncode == 0, sample.stderr
    # the CLI prints exactly what the library's greedy decoding gives: prompt + 12 new tokens
    import torch

    from foundry import load as load_run
    model, tokenizer, _ = load_run(out)
    ids = model.generate(torch.tensor([tokenizer.encode("the quick")]), 12, temperature=0)[0].tolist()
    assert len(ids) == len(tokenizer.encode("the quick")) + 12
    assert sample.stdout == tokenizer.decode(ids) + "\n"
    # no prompt: a fresh document (after the document separator), and only the new text is printed
    fresh = foundry("sample", out, "--tokens", "8", "--temperature", "0")
    assert fresh.returncode == 0 and not fresh.stdout.startswith("\x00"), fresh.stderr
    context = tokenizer.encode("\n\n")
    ids = model.generate(torch.tensor([context]), 8, temperature=0)[0].tolist()
    assert fresh.stdout == tokenizer.decode(ids[len(context):]) + "\n"
    valid = foundry("validate", TINY, "model.n_layer=3", "--json")
    assert valid.returncode == 0 and json.loads(valid.stdout)["config"]["model"]["n_layer"] == 3


@pytest.mark.parametrize("args,message", [
    (["train", "missing.yaml"], "missing.yaml: cannot read"),
    (["train", TINY, "model.n_head=3"], "model.n_embd: 128 is not divisible by model.n_head=3"),
    (["train", TINY, "model.attention=flash"], "model.attention: unknown 'flash'"),
    (["train", TINY, "data.source=/no/such/corpus.txt"], "/no/such/corpus.txt"),
    (["validate", TINY, "budget.tokens=-1"], "budget"),
    (["sample", "/no/such/run"], "not a Foundry checkpoint"),
    (["nonsense"], "unknown command"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(args, message, tmp_path):
    result = foundry(*args, "--out", tmp_path / "run") if args[0] == "train" else foundry(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_a_crash_in_model_code_is_recorded(tiny_text, tmp_path, monkeypatch):
    from foundry.model.gpt import GPT
    from foundry.training.cli import train_main

    def broken_forward(self, idx, caches=None, start=0):
        raise RuntimeError("component exploded")
    monkeypatch.setattr(GPT, "forward", broken_forward)
    out = tmp_path / "run"
    assert train_main([TINY, *tiny_overrides(tiny_text, 2), "--out", str(out)]) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and "component exploded" in summary["error"]


def test_a_split_too_short_for_the_block_is_bad_input(tiny_text, tmp_path):
    result = foundry("train", TINY, *tiny_overrides(tiny_text, 2), "model.block_size=100000",
                     "--out", tmp_path / "run")
    assert result.returncode == 2 and "block_size=100000" in result.stderr
    assert not (tmp_path / "run").exists()
