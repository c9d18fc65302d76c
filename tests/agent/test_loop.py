"""`foundry run` end to end on a temporary git repository with the real trainer and tiny budgets:
promotion through a crash between ranking and commit, a dirty working tree left alone,
`foundry history --json` agreeing with the ledger; clean stop and resume after kill -9 while
training; a deliberately broken component; the proposal filter."""
import glob
import json
import os
import signal
import time

import yaml

from agent.ledger import Ledger
from foundry.catalog import load
from tests.agent.agent_fixtures import GOOD_LR, foundry, make_repo, queue, repo, tiny_baseline  # noqa: F401

RUN = ["run", "--population", "1", "--workers", "2", "--min-delta", "0"]
BROKEN_NORM = '''
import torch
from torch import nn
import foundry.model.modules
from foundry.model.protocols import Norm


class BrokenNorm(Norm):
    """A component an agent got wrong: it builds, then raises on the first forward."""
    def __init__(self, dim, cfg):
        super().__init__()

    def forward(self, x):
        raise RuntimeError("deliberately broken component")


foundry.model.modules.NORMS["broken_norm"] = BrokenNorm
'''


def ledger(repo, campaign="tiny") -> Ledger:
    return Ledger(os.path.join(repo.working_tree_dir, "experiments", campaign, "ledger.sqlite"), readonly=True)


def promote_commits(repo) -> list:
    return [c for c in repo.iter_commits() if c.summary.startswith("promote ")]


def dirty_state(repo) -> dict:
    root = repo.working_tree_dir
    with open(os.path.join(root, "notes.txt"), "a") as f:
        f.write("staged edit\n")
    repo.git.add("notes.txt")
    with open(os.path.join(root, "other.txt"), "a") as f:
        f.write("unstaged edit\n")
    with open(os.path.join(root, "scratch.py"), "w") as f:
        f.write("print('untracked')\n")
    return {"staged": repo.git.diff("--cached"), "unstaged": repo.git.diff(), "untracked": repo.untracked_files}


def test_two_generations_promote_once_through_a_crash(repo):
    before = dirty_state(repo)
    queue(repo, "good_lr.yaml", GOOD_LR)
    crashed = foundry(repo, *RUN, "--generations", "1", "--confirm-seeds", "2",
                      env={"FOUNDRY_CRASH_AT": "after_rank"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout + crashed.stderr
    led = ledger(repo)
    assert led.decision(1)["kind"] == "promote" and led.decision(1)["state"] == "intent"
    assert promote_commits(repo) == []                       # decided, not yet committed

    # generation 2's candidate is a random draw from the mutation registry; a min_delta no tiny run
    # can beat keeps it from being promoted, so the only promotion is generation 1's, made once
    done = foundry(repo, *RUN, "--generations", "2", "--confirm-seeds", "2", "--min-delta", "10")
    assert done.returncode == 0, done.stdout + done.stderr
    (commit,) = promote_commits(repo)                        # exactly one, never two
    assert list(commit.stats.files) == ["baselines/tiny.yaml"]
    assert commit.summary.startswith("promote tiny: train.lr=0.003, train.min_lr=0.0003 (val_bpb ")
    for piece in ("Config diff:", "train.lr: 1e-05 -> 0.003", "g0001-v01-good_lr-s2338", "Campaign: tiny",
                  "Code: ", "Hardware: ", "Foundry-Promotion: tiny/gen_0001"):
        assert piece in commit.message
    assert {"staged": repo.git.diff("--cached"), "unstaged": repo.git.diff(),
            "untracked": repo.untracked_files} == before     # everyone else's edits untouched
    baseline = load(os.path.join(repo.working_tree_dir, "baselines", "tiny.yaml"))
    assert baseline.train.lr == 3e-3 and baseline.mutations == ["train.lr=0.003, train.min_lr=0.0003"]
    assert repo.git.status("--porcelain", "--", "baselines/tiny.yaml") == ""

    decision = led.decision(1)
    assert decision["state"] == "committed" and decision["commit_sha"] == commit.hexsha
    assert led.decision(2) is not None and led.generation(2)["baseline_hash"] != led.generation(1)["baseline_hash"]
    trials = led.trials()
    assert all(t["status"] == "done" and t["attempts"] == 1 for t in trials)   # nothing re-run
    assert len([t for t in trials if t["gen"] == 1]) == 6                      # screen + 2 confirm, both sides
    assert not os.path.exists(os.path.join(repo.working_tree_dir, "experiments", "tiny", "queue", "good_lr.yaml"))
    assert glob.glob(os.path.join(repo.working_tree_dir, "experiments/tiny/gen_0001/runs/*good_lr*/checkpoint"))
    assert not glob.glob(os.path.join(repo.working_tree_dir, "experiments/tiny/gen_0001/runs/*baseline*/checkpoint"))
    # generation 2 promoted nothing: the current baseline's own screening checkpoint is kept to try,
    # and the run ends by saying so
    (kept,) = glob.glob(os.path.join(repo.working_tree_dir, "experiments/tiny/gen_0002/runs/*baseline*/checkpoint"))
    kept_run = os.path.relpath(os.path.dirname(kept), repo.working_tree_dir)
    assert kept_run == "experiments/tiny/gen_0002/runs/g0002-baseline-s3337"
    assert "\nnext:\n" in done.stdout and f"foundry sample {kept_run} --prompt" in done.stdout
    assert f"foundry eval {kept_run} --tasks bpb" in done.stdout and "foundry status --campaign tiny" in done.stdout
    sample = foundry(repo, "sample", kept_run, "--tokens", "5")
    assert sample.returncode == 0 and sample.stdout.strip(), sample.stderr
    variant = yaml.safe_load(open(os.path.join(repo.working_tree_dir, "experiments/tiny/gen_0001/v01-good_lr.yaml")))
    assert variant["parent"].startswith("tiny@") and variant["mutations"] == ["train.lr=0.003, train.min_lr=0.0003"]

    (entry,) = json.loads(foundry(repo, "history", "--json").stdout)
    assert (entry["commit"], entry["generation"], entry["campaign"]) == (commit.hexsha, 1, "tiny")
    assert abs(entry["before"] - decision["baseline_mean"]) < 1e-9
    assert abs(entry["after"] - decision["candidate_mean"]) < 1e-9
    status = json.loads(foundry(repo, "status", "--json").stdout)
    assert status["generation"]["gen"] == 2 and status["promotions"][0]["commit_sha"] == commit.hexsha
    assert status["supervisor"]["running"] is False
    table = foundry(repo, "status").stdout
    assert "leaderboard (val_bpb" in table and "last promotions:" in table and commit.hexsha[:10] in table
    assert commit.hexsha[:10] in foundry(repo, "history").stdout
    runs = json.loads(foundry(repo, "runs", "--json", "--gen", "1", "--variant", "baseline").stdout)
    assert [r["seed"] for r in runs] == [2337, 2338, 2339]
    log = open(os.path.join(repo.working_tree_dir, "experiments", "tiny", "supervisor.log")).read()
    assert "took over a stale lock" in log and "PROMOTE" in log

    # --hours: once the deadline has passed (1.1 s: during the first generation, which trains for longer)
    # no new generation starts
    timed = foundry(repo, *RUN, "--hours", "0.0003", "--confirm-seeds", "2")
    assert timed.returncode == 0, timed.stdout + timed.stderr
    assert ledger(repo).generation(3)["phase"] == "done" and ledger(repo).generation(4) is None
    # generation 3's baseline checkpoint (or its promoted variant's) replaced generation 2's
    assert glob.glob(os.path.join(repo.working_tree_dir, "experiments/tiny/gen_0003/runs/*/checkpoint"))
    assert not glob.glob(os.path.join(repo.working_tree_dir, "experiments/tiny/gen_0002/runs/*/checkpoint"))
    assert "budget reached" in timed.stdout + timed.stderr


def wait_for_training(repo, after: float = 0.0, timeout: float = 180) -> None:
    """Until some trial's progress.json (written after `after`) shows a training step."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for path in glob.glob(os.path.join(repo.working_tree_dir, "experiments/tiny/gen_*/runs/*/progress.json")):
            try:
                if os.path.getmtime(path) < after:
                    continue
                progress = json.load(open(path))
            except ValueError:
                continue
            if progress.get("status") == "running" and progress.get("step", 0) >= 1:
                return
        time.sleep(0.1)
    raise AssertionError("no trial started training")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_stop_kill_9_and_resume_with_a_broken_component(tmp_path):
    """SIGTERM stops cleanly; kill -9 while training leaves no trainer behind; the next run resumes
    and finishes. The queued candidate uses a component that raises: recorded, never promoted."""
    data = tiny_baseline()
    data["budget"] = {"seconds": 4.0}                      # long enough to be killed while training
    data["train"]["checkpoint_interval"] = 20              # so a resumed trial continues, not restarts
    repo = make_repo(str(tmp_path / "repo"), data)
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "sitecustomize.py").write_text(BROKEN_NORM)
    env = {"PYTHONPATH": f"{plugin}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    queue(repo, "broken.yaml", "model:\n  norm: broken_norm\n")
    args = [*RUN, "--generations", "1", "--confirm-seeds", "0", "--no-noise-control"]

    proc = foundry(repo, *args, env=env, wait=False)
    wait_for_training(repo)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    led = ledger(repo)
    assert led.trials(variant="baseline")[0]["status"] == "interrupted"
    assert not any(alive(t["pid"]) for t in led.trials())
    assert not os.path.exists(os.path.join(repo.working_tree_dir, "experiments/tiny/supervisor.lock"))  # released

    proc = foundry(repo, *args, env=env, wait=False)
    wait_for_training(repo, after=time.time())
    running = led.trials(status="running")
    proc.kill()
    proc.wait()
    deadline = time.time() + 10
    while any(alive(t["pid"]) for t in running) and time.time() < deadline:
        time.sleep(0.1)
    assert running and not any(alive(t["pid"]) for t in running), "a trainer outlived its supervisor"
    status = json.loads(foundry(repo, "status", "--json").stdout)   # the ledger still says running ...
    assert status["running"] and not any(r["alive"] for r in status["running"])   # ... their pids say dead
    assert "dead (pid" in foundry(repo, "status").stdout

    done = foundry(repo, *args, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "re-queued" in done.stdout
    (baseline,) = led.trials(variant="baseline")
    assert baseline["status"] == "done" and baseline["attempts"] == 3
    (broken,) = led.trials(variant="v01-broken")
    assert broken["status"] == "failed" and "deliberately broken component" in broken["reason"]
    assert "Traceback" in broken["log_tail"]
    assert led.decision(1)["kind"] == "reject" and promote_commits(repo) == []
    assert "deliberately broken component" in foundry(repo, "runs", "--status", "failed").stdout


def test_ranking_on_a_benchmark_task_promotes_the_higher_scorer(tmp_path):
    """`foundry run --metric rank_score --higher-is-better` with eval.tasks in the baseline: each
    trial's summary carries rank_score (here the bpb task, whose rank value is -bpb), and the
    queued candidate that really scores higher is promoted with the scores in its commit."""
    baseline = tiny_baseline()
    baseline["eval"].update(tasks=["bpb"], limit=4)
    repo = make_repo(str(tmp_path / "repo"), baseline)
    queue(repo, "good_lr.yaml", GOOD_LR)
    done = foundry(repo, *RUN, "--generations", "1", "--confirm-seeds", "2", "--metric", "rank_score",
                   "--higher-is-better")
    assert done.returncode == 0, done.stdout + done.stderr
    (commit,) = promote_commits(repo)
    assert commit.summary.startswith("promote tiny: train.lr=0.003, train.min_lr=0.0003 (rank_score ")
    decision = ledger(repo).decision(1)
    assert decision["kind"] == "promote" and decision["candidate_mean"] > decision["baseline_mean"]
    summaries = [json.loads(t["summary"]) for t in ledger(repo).trials()]
    assert all(s["rank_score"] == s["tasks"]["bpb"]["rank_value"] for s in summaries)
    assert load(os.path.join(repo.working_tree_dir, "baselines", "tiny.yaml")).train.lr == 3e-3
