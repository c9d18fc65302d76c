"""foundry.runner.ray_pool on a real one-node Ray cluster (tests/ray_cluster.py, 127.0.0.1, 2 CPUs):
trials as Ray actors running the code shipped from the working tree (an edit reaches the next
trial), run folders written in place or copied back, a killed actor re-queued exactly once.

As in test_pool.py the "trainer" is a few lines of Python standing in for `foundry train`; the
supervisor's campaign on Ray (tests/agent/test_ray_campaign.py) runs the real one.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from foundry.errors import UserError
from foundry.runner.pool import TrialSpec
from foundry.runner.ray_pool import RayPool, code_files, import_ray
from foundry.runner.ray_trial import SCRATCH

FAKE = """
import json, os, sys, time
out = sys.argv[sys.argv.index('--out') + 1]
mode = open(sys.argv[1]).read().strip()
if mode == 'hang' or (mode == 'die_once' and not os.path.exists(os.path.join(out, 'tried'))):
    open(os.path.join(out, 'tried'), 'w').write('1')
    open(os.path.join(out, 'ppid.tmp'), 'w').write(str(os.getppid()))
    os.replace(os.path.join(out, 'ppid.tmp'), os.path.join(out, 'ppid'))   # the actor's process, for the test to kill
    time.sleep(300)
import foundry
json.dump({'status': 'done', 'val_bpb': 1.25, 'cwd': os.getcwd(), 'foundry': foundry.__file__, 'out': out,
           'marker': open('marker.txt').read().strip(), 'resume': '--resume' in sys.argv,
           'threads': os.environ.get('OMP_NUM_THREADS')}, open(os.path.join(out, 'summary.json'), 'w'))
"""


@pytest.fixture
def work_tree(tmp_path):
    """A git working tree without foundry/ in it: an untracked marker.txt, an ignored file."""
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text("ignored.txt\n")
    (root / "ignored.txt").write_text("not shipped\n")
    (root / "marker.txt").write_text("one\n")
    return root


def spec(tmp_path, name, mode, **kw):
    cfg = tmp_path / f"{name}.txt"
    cfg.write_text(mode)
    return TrialSpec(name, str(cfg), str(tmp_path / "runs" / name), ["train.seed=7"], **kw)


def drive(pool, specs, on_poll=lambda events: None, limit_s=240):
    """Submit, poll until idle; (results by id, every event)."""
    for s in specs:
        pool.submit(s)
    results, events, deadline = {}, [], time.time() + limit_s
    while pool.busy():
        assert time.time() < deadline, "the Ray pool did not finish"
        new = pool.poll()
        events += new
        results.update({e.spec.trial_id: e.result for e in new if e.result})
        on_poll(events)
        time.sleep(0.1)
    return results, events


def test_code_files_are_the_working_tree_as_git_sees_it(work_tree):
    files = code_files(str(work_tree))
    assert "marker.txt" in files and ".gitignore" in files and "ignored.txt" not in files
    assert "foundry/runner/ray_pool.py" in files   # not in the tree: the foundry package goes along


def test_without_ray_the_backend_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)   # `import ray` fails as if it were not installed
    with pytest.raises(UserError, match=r"pip install -e '\.\[ray\]'"):
        import_ray()


def test_trials_run_from_the_shipped_tree_in_place_or_copied_back(ray_cluster, work_tree, tmp_path):
    pool = RayPool(ray_cluster, cwd=str(work_tree), command=[sys.executable, "-c", FAKE], namespace="test-ship",
                   cpus_per_trial=1, timeout_s=120)
    try:
        assert len(pool.workers) == 2   # 2 CPUs, 1 per trial
        results, events = drive(pool, [spec(tmp_path, "a", "done")])
        a = results["a"]
        assert a.status == "done" and a.worker == "ray:127.0.0.1"
        code = a.summary["cwd"]
        assert code.startswith(os.path.join(SCRATCH, "code")) and a.summary["foundry"].startswith(code)
        assert a.summary["marker"] == "one" and a.summary["out"] == str(tmp_path / "runs" / "a")   # shared: in place
        assert a.summary["threads"] == "1"

        (work_tree / "marker.txt").write_text("two\n")   # an agent's edit, uncommitted
        pool.storage = "copy"   # as on a node that does not see this disk
        results, _ = drive(pool, [spec(tmp_path, "b", "done")])
        b = results["b"]
        assert b.status == "done" and b.summary["marker"] == "two" and b.summary["cwd"] != code
        assert b.summary["out"] != str(tmp_path / "runs" / "b")   # trained in a scratch folder on the node ...
        run = tmp_path / "runs" / "b"
        assert json.loads((run / "summary.json").read_text())["marker"] == "two"   # ... and copied back
        assert "==== " in (run / "train.log").read_text()
    finally:
        pool.close()


def test_a_killed_actor_is_requeued_exactly_once(ray_cluster, work_tree, tmp_path):
    pool = RayPool(ray_cluster, cwd=str(work_tree), command=[sys.executable, "-c", FAKE], namespace="test-kill",
                   timeout_s=200, grace_s=1)
    kills = {"once": 0, "twice": 0}

    def kill_running(events):
        for name in kills:
            pid_file = tmp_path / "runs" / name / "ppid"
            if pid_file.exists():
                pid = int(pid_file.read_text())
                pid_file.unlink()
                os.kill(pid, signal.SIGKILL)   # the actor's worker process dies mid-trial
                kills[name] += 1
    try:
        results, events = drive(pool, [spec(tmp_path, "once", "die_once"), spec(tmp_path, "twice", "hang")],
                                kill_running)
    finally:
        pool.close()
    starts = {name: sum(e.kind == "started" and e.spec.trial_id == name for e in events) for name in kills}
    assert kills == {"once": 1, "twice": 2} and starts == {"once": 2, "twice": 2}
    assert results["once"].status == "done" and results["once"].summary["marker"] == "one"
    assert (tmp_path / "runs" / "once" / "train.log").read_text().count("==== ") == 2
    assert results["twice"].status == "failed" and "lost on the Ray cluster 2 time(s)" in results["twice"].reason
