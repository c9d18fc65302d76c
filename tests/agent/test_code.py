"""Trials run the code the ledger fingerprints (agent/code.py): a supervisor started from another
checkout's `foundry` in a second checkout re-executes itself with that checkout's code, its
trials import it, and the fingerprint is that checkout's; a promotion made there names that
checkout's commit as its code, and a fresh clone at that commit holds the code that ran and the
promoted baseline; a trial that ran other code fails."""
import json
import os
import shutil
import subprocess
import sys

import git
import pytest
import yaml

from agent import code
from agent.ledger import Ledger
from foundry.errors import UserError
from foundry.lineage.repo import code_fingerprint, imported_root, running_code
from foundry.catalog import load
from foundry.config import config_hash
from tests.agent.agent_fixtures import GOOD_LR, REPO_ROOT, queue, tiny_baseline


def second_checkout(path) -> git.Repo:
    """A copy of this project's package in a fresh repository (a coding agent's second checkout)."""
    os.makedirs(path)
    for name in ("foundry", "agent"):
        shutil.copytree(os.path.join(REPO_ROOT, name), os.path.join(path, name),
                        ignore=shutil.ignore_patterns("__pycache__"))
    os.makedirs(os.path.join(path, "baselines"))
    with open(os.path.join(path, "baselines", "tiny.yaml"), "w") as f:
        yaml.safe_dump(tiny_baseline(steps=4), f)
    with open(os.path.join(path, ".gitignore"), "w") as f:
        f.write("experiments/\n__pycache__/\n")
    repo = git.Repo.init(path, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Agent")
        cw.set_value("user", "email", "agent@example.invalid")
    repo.git.add("-A")
    repo.index.commit("second checkout")
    return repo


def test_a_second_checkout_runs_its_own_code(tmp_path):
    repo = second_checkout(str(tmp_path / "second"))
    root = repo.working_tree_dir
    started_at = repo.head.commit.hexsha
    queue(repo, "good_lr.yaml", GOOD_LR)            # a clear win: one promotion, committed in this checkout
    script = os.path.join(os.path.dirname(sys.executable), "foundry")   # the installed console script
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", code.REEXEC_MARK)}
    done = subprocess.run([script, "run", "--generations", "1", "--population", "1", "--workers", "1",
                           "--confirm-seeds", "0", "--no-noise-control", "--min-delta", "0"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "holds its own foundry package" in done.stdout and "Restarting" in done.stdout
    led = Ledger(os.path.join(root, "experiments", "tiny", "ledger.sqlite"), readonly=True)
    trials = led.trials()
    assert trials and all(t["status"] == "done" for t in trials)
    for t in trials:
        assert os.path.realpath(json.loads(t["summary"])["code_root"]) == os.path.realpath(root)
        assert t["fingerprint"] == started_at[:12]             # the commit the trials ran
    assert led.generation(1)["fingerprint"] == started_at[:12] != code_fingerprint(git.Repo(REPO_ROOT))

    # the promotion's code origin: the second checkout's commit, which a fresh clone reproduces
    (commit,) = [c for c in repo.iter_commits() if c.summary.startswith("promote ")]
    assert "NO NOISE CONTROL" in commit.message
    (code_line,) = [line for line in commit.message.splitlines() if line.startswith("Code: ")]
    assert code_line == f"Code: {started_at[:12]}"                  # clean: no "+dirty" hash
    clone = git.Repo.clone_from(root, str(tmp_path / "third"))
    clone.git.checkout(code_line.split()[1])
    for package in ("foundry", "agent"):                           # the clone holds exactly the code that ran
        assert clone.head.commit.tree[package].hexsha == repo.commit(started_at).tree[package].hexsha
        assert clone.head.commit.tree[package].hexsha == commit.tree[package].hexsha
    clone.git.checkout(commit.hexsha)
    promoted = load(os.path.join(clone.working_tree_dir, "baselines", "tiny.yaml"))
    (trial,) = [t for t in trials if t["variant"] != "baseline"]
    assert config_hash(promoted) == trial["config_hash"] and promoted.train.lr == 3e-3


def test_refuses_when_the_repositorys_code_cannot_be_made_to_run(tmp_path, monkeypatch):
    repo = second_checkout(str(tmp_path / "second"))
    monkeypatch.setenv(code.REEXEC_MARK, repo.working_tree_dir)   # as if re-executed already
    with pytest.raises(UserError, match="holds its own foundry package, but even with it first"):
        code.run_supervised_code(repo.working_tree_dir, ["run"])


def test_wrong_code_and_fingerprints(tmp_path):
    root = str(tmp_path / "second")
    second_checkout(root)
    assert code.wrong_code({"code_root": root}, root) == ""
    assert "not the supervised repository's" in code.wrong_code({"code_root": "/elsewhere"}, root)
    assert "does not record code_root" in code.wrong_code({}, root)
    plain = tmp_path / "configs_only"
    plain.mkdir()
    assert code.wrong_code({"code_root": "/elsewhere"}, str(plain)) == "" and code.trial_env(str(plain)) == {}
    assert code.trial_env(root)["PYTHONPATH"].split(os.pathsep)[0] == root
    configs = git.Repo.init(plain, initial_branch="main")   # holds no package: the installed one runs
    (plain / "x.txt").write_text("x")
    configs.index.add(["x.txt"])
    configs.index.commit("x", author=git.Actor("a", "a@b.c"), committer=git.Actor("a", "a@b.c"))
    assert running_code(configs).startswith(imported_root() + "@")
