"""Promotion in git: rewrite baselines/NAME.yaml and commit that file and nothing else.

    p = build_promotion(repo, rel, "CAMPAIGN/gen_0003", baseline, candidate, "lr:x2", "val_bpb",
                        difference, seeds, trial_ids, "CAMPAIGN", 3, test)
    sha = promote(repo, p)                   # idempotent: finds its own earlier commit first

The commit is built from a temporary index (HEAD's tree with only the baseline path changed),
so staged and unstaged edits of anyone else — a coding agent editing modules while the loop
runs — are left exactly as they were. Then HEAD moves with a compare-and-swap `update-ref`,
and only then are the working-tree file and its one real index entry brought up to date.
Every promotion carries a `Foundry-Promotion: CAMPAIGN/gen_NNNN` trailer: a supervisor that
died anywhere in between finds its commit in git log on restart instead of committing twice.
The supervisor (agent/loop.py) and `foundry sweep --promote` both build their Promotion here
and commit through the same `promote`. Git helpers (open_repo, fingerprint) live in repo.py.
"""
from __future__ import annotations

import os
import signal
import tempfile
import time
from dataclasses import dataclass, field

import git
import yaml

from foundry.catalog import from_dict
from foundry.config import LINEAGE_KEYS, Config, config_hash, diff
from foundry.errors import UserError
from foundry.hardware import describe_machine
from foundry.io import atomic_write_text
from foundry.lineage.repo import head_text, running_code, text_hash

FALLBACK_IDENTITY = {"GIT_AUTHOR_NAME": "foundry supervisor", "GIT_AUTHOR_EMAIL": "foundry@localhost",
                     "GIT_COMMITTER_NAME": "foundry supervisor", "GIT_COMMITTER_EMAIL": "foundry@localhost"}


class PromotionConflict(UserError):
    """The baseline changed under the supervisor's feet; the promotion is not made."""


def crash_point(name: str) -> None:
    """Test hook: FOUNDRY_CRASH_AT=name makes the process kill itself with SIGKILL right here."""
    if os.environ.get("FOUNDRY_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


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
    notes: list = field(default_factory=list)   # lines for the body: compute of both sides, transfer, ...


def build_promotion(repo: git.Repo, rel: str, promotion_id: str, baseline: Config, candidate: Config,
                    change: str, metric: str, difference, seeds: list, trial_ids: list, campaign: str,
                    generation: int, test: str, notes: list = ()) -> Promotion:
    """The one way a promotion is described: the new file text (only the candidate's changes, lineage
    updated), the config diff, the per-seed table, the means of `difference` (a stats.Difference),
    the code fingerprint and the machine."""
    text = promoted_text(head_text(repo, rel), baseline, candidate, change)
    changes = {k: v for k, v in diff(baseline, candidate).items() if k.split(".")[0] not in LINEAGE_KEYS}
    return Promotion(promotion_id, rel, text, config_hash(baseline), baseline.name, change, metric,
                     difference.baseline_mean, difference.candidate_mean, changes, seeds, trial_ids, campaign,
                     generation, test, running_code(repo), describe_machine(), list(notes))


def _set_dotted(data: dict, dotted: str, value) -> None:
    *sections, key = dotted.split(".")
    for section in sections:
        data = data.setdefault(section, {})
    data[key] = value


def promoted_text(original_text: str, baseline: Config, candidate: Config, mutation: str) -> str:
    """The baseline file rewritten with only the candidate's changes and updated lineage.

    The file keeps its style (it lists only what differs from the defaults) and its header
    comment; the result must load to the candidate's exact config hash.
    """
    data = yaml.safe_load(original_text) or {}
    for dotted, (_, new) in diff(baseline, candidate).items():
        if dotted.split(".")[0] not in LINEAGE_KEYS:
            _set_dotted(data, dotted, new)
    data["name"] = baseline.name
    data["parent"] = f"{baseline.name}@{config_hash(baseline)}"
    data["mutations"] = [*baseline.mutations, mutation]
    if config_hash(from_dict(data)) != config_hash(candidate):
        raise RuntimeError("promoted baseline does not reproduce the candidate's config")
    ordered = {k: data[k] for k in LINEAGE_KEYS if k in data}
    ordered.update({k: v for k, v in data.items() if k not in ordered})
    header = []
    for line in original_text.splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    body = yaml.safe_dump(ordered, sort_keys=False, default_flow_style=False)
    return ("\n".join(header) + "\n" if header else "") + body


def message(p: Promotion) -> str:
    rel = (p.after - p.before) / abs(p.before) * 100 if p.before else 0.0
    lines = [f"promote {p.name}: {p.change} ({p.metric} {p.before:.3f} -> {p.after:.3f}, {rel:+.1f}%)", "",
             "Config diff:"]
    lines += [f"  {k}: {a!r} -> {b!r}" for k, (a, b) in sorted(p.config_diff.items())] or ["  (none)"]
    lines += ["", f"  {'seed':>8}  {'baseline':>10}  {'candidate':>10}"]
    lines += [f"  {s:>8}  {_fmt(b):>10}  {_fmt(c):>10}" for s, b, c in p.seeds]
    lines += [f"  {'mean':>8}  {p.before:>10.4f}  {p.after:>10.4f}", f"  {p.test}", *[f"  {n}" for n in p.notes], "",
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
