"""The git side of lineage: find the repository, check a baseline is committed, fingerprint the code.

    repo = open_repo("baselines/tiny.yaml")
    rel = relpath(repo, "baselines/tiny.yaml")       # baselines/tiny.yaml
    check_committed(repo, rel)                       # UserError if untracked or edited
    head_text(repo, rel); text_hash(text)            # the committed file, its config hash
    code_fingerprint(repo)                           # HEAD sha (+ hash of uncommitted edits)
    running_code(repo)                               # the fingerprint of the foundry that runs for repo

A repository that holds the foundry package (a checkout of this project) runs its own code: the
supervisor puts it first on the path of every trial (agent/code.py). A repository that only holds
configs runs the installed package: its fingerprint names that package's folder and checkout.
"""
from __future__ import annotations

import hashlib
import os
from importlib import metadata

import git
import yaml

from foundry.config import config_hash
from foundry.errors import UserError


def open_repo(path: str) -> git.Repo:
    """The repository holding `path` (a file or a folder)."""
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    try:
        return git.Repo(folder, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise UserError(f"{path}: not inside a git repository (promotions are git commits)") from None


def relpath(repo: git.Repo, path: str) -> str:
    return os.path.relpath(os.path.realpath(path), os.path.realpath(repo.working_tree_dir)).replace(os.sep, "/")


def check_committed(repo: git.Repo, rel: str) -> None:
    """A baseline must be tracked and clean: the loop would otherwise commit someone's edits."""
    if not repo.head.is_valid():
        raise UserError(f"{rel}: the repository has no commits yet; commit the baseline first")
    try:
        repo.git.cat_file("-e", f"HEAD:{rel}")
    except git.GitCommandError:
        raise UserError(f"{rel}: baseline is not committed; `git add` and commit it first") from None
    if repo.git(no_optional_locks=True).status("--porcelain", "--", rel).strip():   # a read: no index refresh
        raise UserError(f"{rel}: baseline file has uncommitted edits; commit or revert them first")


def head_text(repo: git.Repo, rel: str, rev: str = "HEAD") -> str:
    return repo.git.show(f"{rev}:{rel}", strip_newline_in_stdout=False)


def text_hash(text: str) -> str:
    from foundry.catalog import from_dict   # imports torch: not at import time (supervisor start-up)
    return config_hash(from_dict(yaml.safe_load(text) or {}))


def code_fingerprint(repo: git.Repo, exclude: tuple = ("experiments/",)) -> str:
    """HEAD sha, plus a hash of uncommitted edits and untracked files when there are any."""
    head = repo.head.commit.hexsha[:12]
    digest, dirty = hashlib.sha256(), False
    changes = repo.git.diff("HEAD", "--binary", "--", ".", *[f":!{e}" for e in exclude])
    if changes:
        digest.update(changes.encode())
        dirty = True
    for path in sorted(repo.untracked_files):
        if path.startswith(exclude):
            continue
        dirty = True
        digest.update(path.encode())
        full = os.path.join(repo.working_tree_dir, path)
        size = os.path.getsize(full) if os.path.isfile(full) else 0
        if size < 1 << 20:
            with open(full, "rb") as f:
                digest.update(f.read())
        else:
            digest.update(str(size).encode())
    return f"{head}+{digest.hexdigest()[:12]}" if dirty else head


def holds_package(root: str) -> bool:
    """Does the repository at `root` hold its own foundry package?"""
    return os.path.isfile(os.path.join(root, "foundry", "__init__.py"))


def imported_root() -> str:
    """The folder this process imports foundry from (the parent of the package folder)."""
    package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))   # foundry/lineage/repo.py
    return os.path.dirname(package)


def running_code(repo: git.Repo) -> str:
    """Fingerprint of the code that trials of `repo` run: the repository's own when it holds the
    package, else the installed package's ("PATH@HEAD[+dirty]" for a checkout, else its version)."""
    if holds_package(repo.working_tree_dir):
        return code_fingerprint(repo)
    root = imported_root()
    try:
        return f"{root}@{code_fingerprint(git.Repo(root, search_parent_directories=True))}"
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        try:
            return f"{root}@foundry {metadata.version('foundry')}"
        except metadata.PackageNotFoundError:
            return f"{root}@foundry (unknown version)"
