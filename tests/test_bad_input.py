"""Every bad input of tests/bad_inputs.py, one parametrized test per category, through the real
`foundry` entry point (foundry.cli.main): exit code 2, one line on stderr naming the key, file
or value, no traceback, and no file written or changed under the sandbox. A few of them, and a
reader that closes the pipe, run as real `foundry` processes too."""
import os
import subprocess
import sys

import pytest

from foundry.cli import main
from tests.bad_inputs import CASES, build_sandbox, expand, snapshot
from tests.conftest import REPO


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    return build_sandbox(str(tmp_path_factory.mktemp("bad-inputs")))


def refused(sandbox, template: str, message: str, capsys, monkeypatch) -> None:
    monkeypatch.chdir(sandbox["root"])
    before = snapshot(sandbox["root"])
    capsys.readouterr()
    try:
        code = main(expand(template, sandbox))
    except SystemExit as e:   # only argparse's --help would get here
        code = e.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("foundry") and message in lines[0], lines[0]
    assert snapshot(sandbox["root"]) == before, "a refused command wrote or changed files"


@pytest.mark.parametrize("template,message", CASES["numbers"])
def test_non_finite_and_absurd_numbers(sandbox, template, message, capsys, monkeypatch):
    refused(sandbox, template, message, capsys, monkeypatch)


@pytest.mark.parametrize("template,message", CASES["sizes"])
def test_negative_zero_and_too_large_sizes(sandbox, template, message, capsys, monkeypatch):
    refused(sandbox, template, message, capsys, monkeypatch)


@pytest.mark.parametrize("template,message", CASES["devices"])
def test_unknown_and_absent_devices(sandbox, template, message, capsys, monkeypatch):
    refused(sandbox, template, message, capsys, monkeypatch)


@pytest.mark.parametrize("template,message", CASES["files"])
def test_unreadable_files_unwritable_outputs_and_damaged_checkpoints(sandbox, template, message, capsys,
                                                                    monkeypatch):
    refused(sandbox, template, message, capsys, monkeypatch)


@pytest.mark.parametrize("template,message", CASES["values"])
def test_command_line_values(sandbox, template, message, capsys, monkeypatch):
    refused(sandbox, template, message, capsys, monkeypatch)


@pytest.mark.parametrize("template,message", CASES["stages"])
def test_inconsistent_stage_pipelines(sandbox, template, message, capsys, monkeypatch):
    refused(sandbox, template, message, capsys, monkeypatch)


@pytest.mark.parametrize("template,message", CASES["supervisor"])
def test_supervisor_refusals_leave_no_campaign_behind(sandbox, template, message, capsys, monkeypatch):
    refused(sandbox, template, message, capsys, monkeypatch)
    assert not os.path.exists(os.path.join(sandbox["repo"], "experiments"))


def test_every_command_is_tried():
    """Each subcommand of foundry.cli.COMMANDS (and of data and zoo) has bad inputs in the catalogue."""
    from foundry.cli import COMMANDS
    from foundry.data.cli import DATA_COMMANDS
    from foundry.zoo.cli import ZOO_COMMANDS
    tried = {tuple(template.split()[:2]) for cases in CASES.values() for template, _ in cases}
    firsts = {words[0] for words in tried}
    assert set(COMMANDS) - {"data", "zoo"} <= firsts, set(COMMANDS) - firsts
    for group, subs in (("data", DATA_COMMANDS), ("zoo", ZOO_COMMANDS)):
        assert {(group, name) for name in subs} <= tried, (group, subs)
    assert sum(len(cases) for cases in CASES.values()) >= 40


def foundry_process(args, sandbox, **kwargs):
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.Popen([sys.executable, "-m", "foundry.cli", *args], cwd=sandbox["root"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.parametrize("category", sorted(CASES))
def test_the_first_of_each_category_in_a_real_process(sandbox, category):
    template, message = CASES[category][0]
    before = snapshot(sandbox["root"])
    proc = foundry_process(expand(template, sandbox), sandbox)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err, err
    assert snapshot(sandbox["root"]) == before


@pytest.mark.parametrize("args", [["mutate", "--list"], ["--help"]])
def test_a_closed_pipe_is_a_quiet_exit(sandbox, args):
    """`foundry mutate --list | head`: the reader is gone before foundry writes; no traceback."""
    proc = foundry_process(expand(" ".join(args), sandbox), sandbox)
    proc.stdout.close()   # the reader leaves before the first line
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141 and err == "", err
