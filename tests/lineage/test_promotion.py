"""foundry.lineage.promotion + foundry.lineage.history: a commit with only the baseline file, whatever else is dirty;
crash-safe (found again by its trailer); read back by `foundry history`."""
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict

import pytest
import yaml

from foundry.errors import UserError
from foundry.lineage.history import promotions
from foundry.lineage.promotion import Promotion, PromotionConflict, promote
from foundry.lineage.repo import check_committed, code_fingerprint, head_text, text_hash
from tests.agent.agent_fixtures import repo  # noqa: F401  (fixture)

REL = "baselines/tiny.yaml"
PROMOTE = """import json, sys
from foundry.lineage.promotion import Promotion, promote
from foundry.lineage.repo import open_repo
repo = open_repo(sys.argv[1])
promote(repo, Promotion(**json.loads(sys.argv[2])))
"""


def make_promotion(repo) -> Promotion:
    old = head_text(repo, REL)
    data = yaml.safe_load(old)
    data["train"]["lr"] = 3e-3
    return Promotion("tiny/gen_0001", REL, yaml.safe_dump(data, sort_keys=False), text_hash(old), "tiny",
                     "lr:x300", "val_bpb", 1.25, 1.20, {"train.lr": (1e-5, 3e-3)},
                     [(1, 1.26, 1.21), (2, 1.24, 1.19)], ["g1-baseline-s1", "g1-v01-s1"], "tiny", 1,
                     "improvement 0.05 vs threshold 0.01", "abc123", "test machine")


def make_dirty(repo):
    root = repo.working_tree_dir
    with open(os.path.join(root, "notes.txt"), "a") as f:
        f.write("a staged edit\n")
    repo.git.add("notes.txt")
    with open(os.path.join(root, "notes.txt"), "a") as f:
        f.write("then an unstaged one on top\n")
    with open(os.path.join(root, "other.txt"), "w") as f:
        f.write("an unstaged edit\n")
    with open(os.path.join(root, "new_module.py"), "w") as f:
        f.write("x = 1\n")


def snapshot(repo) -> dict:
    root = repo.working_tree_dir
    files = {n: open(os.path.join(root, n)).read() for n in ("notes.txt", "other.txt", "new_module.py")}
    return {"staged": repo.git.diff("--cached"), "unstaged": repo.git.diff(),
            "untracked": sorted(repo.untracked_files), "files": files}


def test_commit_holds_only_the_baseline_and_leaves_the_rest_as_it_was(repo):
    make_dirty(repo)
    before, parent = snapshot(repo), repo.head.commit.hexsha
    p = make_promotion(repo)
    sha = promote(repo, p)
    commit = repo.commit(sha)
    assert list(commit.stats.files) == [REL] and commit.parents[0].hexsha == parent
    assert commit.summary == "promote tiny: lr:x300 (val_bpb 1.250 -> 1.200, -4.0%)"
    body = commit.message
    for piece in ("train.lr: 1e-05 -> 0.003", "1.2600", "1.1900", "g1-v01-s1", "Campaign: tiny, generation 1",
                  "Code: abc123", "Hardware: test machine", "Foundry-Promotion: tiny/gen_0001"):
        assert piece in body
    assert snapshot(repo) == before                    # staged, unstaged, untracked: untouched
    assert repo.git.status("--porcelain", "--", REL) == ""
    assert open(os.path.join(repo.working_tree_dir, REL)).read() == p.new_text
    assert promote(repo, p) == sha                     # idempotent: found by its trailer
    assert len(list(repo.iter_commits())) == 2
    (entry,) = promotions(repo)
    assert (entry["commit"], entry["generation"], entry["before"], entry["after"]) == (sha, 1, 1.25, 1.2)
    assert promotions(repo, "baselines/other.yaml") == []


@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
def test_a_crash_inside_promotion_is_finished_exactly_once(repo, point):
    make_dirty(repo)
    before = snapshot(repo)
    p = make_promotion(repo)
    crashed = subprocess.run([sys.executable, "-c", PROMOTE, os.path.join(repo.working_tree_dir, REL),
                              json.dumps(asdict(p))], env={**os.environ, "FOUNDRY_CRASH_AT": point})
    assert crashed.returncode == -9
    committed = point == "after_commit"
    assert len(list(repo.iter_commits())) == (2 if committed else 1)
    sha = promote(repo, p)
    assert len(list(repo.iter_commits())) == 2 and repo.head.commit.hexsha == sha
    assert repo.git.status("--porcelain", "--", REL) == "" and snapshot(repo) == before
    assert not re.search("index.lock", str(os.listdir(os.path.join(repo.git_dir))))


def test_baseline_edits_are_refused(repo):
    path = os.path.join(repo.working_tree_dir, REL)
    p = make_promotion(repo)
    with open(path, "a") as f:
        f.write("# someone's edit\n")
    with pytest.raises(UserError, match="uncommitted edits"):
        check_committed(repo, REL)
    with pytest.raises(PromotionConflict, match="uncommitted edits"):
        promote(repo, p)
    with pytest.raises(UserError, match="not committed"):
        check_committed(repo, "baselines/missing.yaml")


def test_fingerprint_tracks_uncommitted_code_but_not_experiments(repo):
    root = repo.working_tree_dir
    clean = code_fingerprint(repo)
    assert clean == repo.head.commit.hexsha[:12]
    os.makedirs(os.path.join(root, "experiments", "tiny"))
    with open(os.path.join(root, "experiments", "tiny", "x.txt"), "w") as f:
        f.write("run output")
    assert code_fingerprint(repo) == clean
    with open(os.path.join(root, "other.txt"), "w") as f:
        f.write("edited\n")
    dirty = code_fingerprint(repo)
    assert dirty.startswith(clean + "+")
    with open(os.path.join(root, "new_module.py"), "w") as f:
        f.write("y = 2\n")
    assert code_fingerprint(repo) not in (clean, dirty)
