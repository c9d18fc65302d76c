"""Fixtures and helpers for the supervisor's tests: a temporary git repository holding a
shrunken copy of the shipped baselines/tiny.yaml (tiny model, a few steps, a deliberately
poor learning rate so a queued candidate with a good one wins clearly), and helpers to run
`foundry` in it. Test files import it as tests.agent.agent_fixtures (the lineage tests too)."""
import os
import subprocess
import sys

import git
import pytest
import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOOD_LR = "train:\n  lr: 3.0e-3\n  min_lr: 3.0e-4\n"


def tiny_baseline(steps: int = 20) -> dict:
    with open(os.path.join(REPO_ROOT, "baselines", "tiny.yaml"), encoding="utf-8") as f:
        data = yaml.safe_load(f)
    data["model"].update(n_layer=1, n_head=2, n_embd=32, block_size=32)
    data["train"].update(lr=1e-5, min_lr=1e-6, warmup_steps=0, batch_size=8)
    data["budget"] = {"steps": steps}
    data["eval"] = {"interval": 1000, "bytes": 512}
    return data


def make_repo(path, baseline: dict) -> git.Repo:
    repo = git.Repo.init(path, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Test Person")
        cw.set_value("user", "email", "test@example.invalid")
    os.makedirs(os.path.join(path, "baselines"))
    with open(os.path.join(path, "baselines", "tiny.yaml"), "w") as f:
        f.write("# tiny, shrunk for tests\n" + yaml.safe_dump(baseline, sort_keys=False))
    for name, text in ((".gitignore", "experiments/\n"), ("notes.txt", "notes\n"), ("other.txt", "other\n")):
        with open(os.path.join(path, name), "w") as f:
            f.write(text)
    repo.index.add(["baselines/tiny.yaml", ".gitignore", "notes.txt", "other.txt"])
    repo.index.commit("initial")
    return repo


@pytest.fixture
def repo(tmp_path):
    return make_repo(str(tmp_path / "repo"), tiny_baseline())


def queue(repo, name: str, text: str, campaign: str = "tiny") -> None:
    folder = os.path.join(repo.working_tree_dir, "experiments", campaign, "queue")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "w") as f:
        f.write(text)


def foundry(repo, *args, env=None, timeout=300, wait=True):
    """`python -m foundry.cli ARGS` in the repository (a subprocess, like a person would run it)."""
    argv = [sys.executable, "-m", "foundry.cli", *args]
    full_env = {**os.environ, **(env or {})}
    if not wait:
        return subprocess.Popen(argv, cwd=repo.working_tree_dir, env=full_env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(argv, cwd=repo.working_tree_dir, env=full_env, capture_output=True,
                          text=True, timeout=timeout)
