"""`foundry run` refuses bad input with one line and exit code 2 before anything starts."""
import os
import shutil
import subprocess
import sys

import pytest

from foundry.cli import main
from tests.agent.agent_fixtures import repo  # noqa: F401  (fixture)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HOLD = ("import sys, time; from agent.lock import CampaignLock; CampaignLock(sys.argv[1]).acquire(); "
        "print('held', flush=True); time.sleep(60)")


def run(capsys, *args) -> tuple[int, str]:
    code = main(["run", *args])
    err = capsys.readouterr().err.strip()
    return code, err


def test_not_inside_a_git_repository(tmp_path, capsys, monkeypatch):
    os.makedirs(tmp_path / "baselines")
    shutil.copy(os.path.join(REPO_ROOT, "baselines", "tiny.yaml"), tmp_path / "baselines" / "tiny.yaml")
    monkeypatch.chdir(tmp_path)
    code, err = run(capsys, "--baseline", "baselines/tiny.yaml", "--generations", "1")
    assert code == 2 and "not inside a git repository" in err and len(err.splitlines()) == 1


def test_bad_baselines_and_folders(repo, capsys, monkeypatch):
    root = repo.working_tree_dir
    monkeypatch.chdir(root)
    baseline = os.path.join(root, "baselines", "tiny.yaml")
    with open(baseline, "a") as f:
        f.write("# an uncommitted edit\n")
    code, err = run(capsys, "--generations", "1")
    assert code == 2 and "uncommitted edits" in err and len(err.splitlines()) == 1
    repo.git.checkout("--", "baselines/tiny.yaml")

    with open(os.path.join(root, "baselines", "broken.yaml"), "w") as f:
        f.write("name: broken\nmodel:\n  n_embd: 30\n  n_head: 4\nbudget:\n  steps: 3\n")
    repo.index.add(["baselines/broken.yaml"])
    repo.index.commit("a broken baseline")
    code, err = run(capsys, "--baseline", "baselines/broken.yaml")
    assert code == 2 and "n_embd" in err and len(err.splitlines()) == 1

    with open(os.path.join(root, "not_a_folder"), "w") as f:
        f.write("x")
    code, err = run(capsys, "--experiments", "not_a_folder", "--generations", "1")
    assert code == 2 and "not_a_folder is a file, not a folder" in err

    assert run(capsys, "--generations", "0")[0] == 2
    assert run(capsys, "--campaign", "../escape")[0] == 2
    assert run(capsys, "--workers", "lots", "--generations", "1")[0] == 2


def test_a_running_supervisor_holds_the_campaign(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo.working_tree_dir)
    folder = os.path.join(repo.working_tree_dir, "experiments", "tiny")
    os.makedirs(folder)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, os.path.join(folder, "supervisor.lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, err = run(capsys, "--generations", "1")
        assert code == 2 and f"pid {holder.pid}" in err and len(err.splitlines()) == 1
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("command", ["status", "runs"])
def test_status_without_a_campaign_is_a_user_error(tmp_path, capsys, command):
    assert main([command, "--experiments", str(tmp_path)]) == 2
    assert "no campaigns yet" in capsys.readouterr().err


def test_backend_ray_without_ray_says_how_to_install_it_and_writes_nothing(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo.working_tree_dir)
    monkeypatch.setitem(sys.modules, "ray", None)   # as if Ray were not installed
    code, err = run(capsys, "--generations", "1", "--backend", "ray")
    assert code == 2 and "pip install -e '.[ray]'" in err and len(err.splitlines()) == 1
    assert not os.path.exists(os.path.join(repo.working_tree_dir, "experiments", "tiny", "campaign.yaml"))
    code, err = run(capsys, "--generations", "1", "--gpus-per-trial", "0")
    assert code == 2 and "--gpus-per-trial: must be in [1, 4096]" in err
