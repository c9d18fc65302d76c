"""Promotion in git: rewrite baselines/NAME.yaml and commit that file and nothing else.

    repo = open_repo("baselines/tiny.yaml")
    sha = promote(repo, Promotion(...))      # idempotent: finds its own earlier commit first

The commit is built from a temporary index (HEAD's tree with only the baseline path changed),
so staged and unstaged edits of anyone else — a coding agent editing modules while the loop
runs — are left exactly as they were. Then HEAD moves with a compare-and-swap `update-ref`,
and only then are the working-tree file and its one real index entry brought up to date.
Every promotion carries a `Foundry-Promotion: CAMPAIGN/gen_NNNN` trailer: a supervisor that
died anywhere in between finds its commit in git log on restart instead of committing twice.
`foundry sweep --promote` uses the same `promote`.
"""
from __future__ import annotations

import hashlib
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import git
import yaml

from foundry.config import atomic_write_text, config_hash, from_dict
from foundry.errors import UserError

FALLBACK_IDENTITY = {"GIT_AUTHOR_NAME": "foundry supervisor", "GIT_AUTHOR_EMAIL": "foundry@localhost",
                     "GIT_COMMITTER_NAME": "foundry supervisor", "GIT_COMMITTER_EMAIL": "foundry@localhost"}


class PromotionConflict(UserError):
    """The baseline changed under the supervisor's feet; the promotion is not made."""


def crash_point(name: str) -> None:
    """Test hook: FOUNDRY_CRASH_AT=name makes the process kill itself with SIGKILL right here."""
    if os.environ.get("FOUNDRY_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


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
    if repo.git.status("--porcelain", "--", rel).strip():
        raise UserError(f"{rel}: baseline file has uncommitted edits; commit or revert them first")


def head_text(repo: git.Repo, rel: str, rev: str = "HEAD") -> str:
    return repo.git.show(f"{rev}:{rel}", strip_newline_in_stdout=False)


def text_hash(text: str) -> str:
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


def hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    text = f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores"
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.split("\n")
        gpus = [g.strip() for g in out if g.strip()]
        text += f", GPUs: {', '.join(gpus)}" if gpus else ""
    return text


@dataclass
class Promotion:
    promotion_id: str          # CAMPAIGN/gen_NNNN: unique, written as a trailer
    rel_path: str              # baselines/NAME.yaml, relative to the repository root
    new_text: str              # the promoted config as YAML (lineage updated)
    old_hash: str              # config hash of the baseline this generation started from
    name: str
    change: str                # mutation summary
    metric: str
    before: float
    after: float
    config_diff: dict          # dotted key -> (old, new)
    seeds: list = field(default_factory=list)   # [(seed, baseline value, candidate value)]
    trial_ids: list = field(default_factory=list)
    campaign: str = ""
    generation: int = 0
    test: str = ""             # one line: improvement versus threshold
    fingerprint: str = ""
    hardware: str = ""


def message(p: Promotion) -> str:
    rel = (p.after - p.before) / abs(p.before) * 100 if p.before else 0.0
    lines = [f"promote {p.name}: {p.change} ({p.metric} {p.before:.3f} -> {p.after:.3f}, {rel:+.1f}%)", "",
             "Config diff:"]
    lines += [f"  {k}: {a!r} -> {b!r}" for k, (a, b) in sorted(p.config_diff.items())] or ["  (none)"]
    lines += ["", f"  {'seed':>8}  {'baseline':>10}  {'candidate':>10}"]
    lines += [f"  {s:>8}  {_fmt(b):>10}  {_fmt(c):>10}" for s, b, c in p.seeds]
    lines += [f"  {'mean':>8}  {p.before:>10.4f}  {p.after:>10.4f}", f"  {p.test}", "",
              f"Trials: {', '.join(p.trial_ids)}", f"Campaign: {p.campaign}, generation {p.generation}",
              f"Code: {p.fingerprint}", f"Hardware: {p.hardware}", "",
              f"Foundry-Promotion: {p.promotion_id}", f"Foundry-Baseline: {p.rel_path}",
              f"Foundry-Campaign: {p.campaign}", f"Foundry-Generation: {p.generation}",
              f"Foundry-Change: {p.change}", f"Foundry-Metric: {p.metric}",
              f"Foundry-Before: {p.before!r}", f"Foundry-After: {p.after!r}"]
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def find_commit(repo: git.Repo, promotion_id: str) -> str | None:
    out = repo.git.log("--fixed-strings", f"--grep=Foundry-Promotion: {promotion_id}", "--format=%H", "HEAD")
    return out.split()[0] if out.strip() else None


def _identity(repo: git.Repo) -> dict:
    try:
        repo.git.var("GIT_COMMITTER_IDENT")
        repo.git.var("GIT_AUTHOR_IDENT")
        return {}
    except git.GitCommandError:
        return FALLBACK_IDENTITY


def commit_only(repo: git.Repo, rel: str, text: str, msg: str) -> str:
    """Commit `text` as `rel` on top of HEAD from a temporary index; returns the new sha."""
    parent = repo.head.commit.hexsha
    blob = repo.git.hash_object("-w", "--stdin", istream=_bytes_file(text))
    mode = repo.git.ls_tree(parent, "--", rel).split(" ", 1)[0] or "100644"
    with tempfile.TemporaryDirectory(prefix="foundry-index-") as tmp:
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        repo.git.read_tree(parent, env=env)
        repo.git.update_index("--add", "--cacheinfo", f"{mode},{blob},{rel}", env=env)
        tree = repo.git.write_tree(env=env)
    with _bytes_file(msg) as message_file:
        sha = repo.git.commit_tree(tree, "-p", parent, "-F", "-", istream=message_file, env=_identity(repo))
    crash_point("before_commit")
    # compare-and-swap: fails instead of overwriting a commit someone made meanwhile
    repo.git.update_ref("-m", f"foundry: {msg.splitlines()[0]}", "HEAD", sha, parent)
    crash_point("after_commit")
    return sha


def _bytes_file(text: str):
    f = tempfile.TemporaryFile()
    f.write(text.encode("utf-8"))
    f.seek(0)
    return f


def sync_worktree(repo: git.Repo, rel: str) -> None:
    """Bring the working-tree file and its own index entry to HEAD's version (other entries untouched)."""
    full = os.path.join(repo.working_tree_dir, rel)
    mode = os.stat(full).st_mode & 0o777 if os.path.exists(full) else 0o644
    atomic_write_text(full, head_text(repo, rel))
    os.chmod(full, mode)
    for attempt in range(120):   # someone else's `git add` may hold index.lock for a moment
        try:
            repo.git.update_index("--", rel)
            return
        except git.GitCommandError:
            if attempt == 119:
                raise
            time.sleep(0.5)


def promote(repo: git.Repo, p: Promotion) -> str:
    """Commit the promotion once. If its commit already exists (a crash after committing), only
    finish the working tree; if the baseline moved since the generation began, refuse."""
    full = os.path.join(repo.working_tree_dir, p.rel_path)
    existing = find_commit(repo, p.promotion_id)
    if existing:
        with open(full, encoding="utf-8") as f:
            on_disk = f.read()
        if on_disk != head_text(repo, p.rel_path) and on_disk == head_text(repo, p.rel_path, f"{existing}^"):
            sync_worktree(repo, p.rel_path)   # died between update-ref and the file write
        return existing
    if text_hash(head_text(repo, p.rel_path)) != p.old_hash:
        raise PromotionConflict(f"{p.rel_path}: baseline changed in git since generation {p.generation} began")
    if repo.git.status("--porcelain", "--", p.rel_path).strip():
        raise PromotionConflict(f"{p.rel_path}: baseline file has uncommitted edits; not promoting over them")
    sha = commit_only(repo, p.rel_path, p.new_text, message(p))
    sync_worktree(repo, p.rel_path)
    return sha
