"""`foundry run --backend ray` end to end with the real trainer on a real one-node Ray cluster
(tests/ray_cluster.py: 127.0.0.1, 2 CPUs): a short campaign whose supervisor is killed with -9
while its trials train on the cluster; the restart re-attaches to them instead of starting them
again, finishes the generation and promotes, the supervisor alone writing the ledger and git."""
import glob
import os

from tests.agent.agent_fixtures import GOOD_LR, foundry, make_repo, queue, tiny_baseline
from tests.agent.test_loop import ledger, promote_commits, wait_for_training


def test_a_campaign_on_ray_resumes_after_kill_9_without_running_a_trial_twice(ray_cluster, tmp_path):
    data = tiny_baseline()   # 20 steps: a trial may end while its supervisor is down, and is collected then
    repo = make_repo(str(tmp_path / "repo"), data)
    queue(repo, "good_lr.yaml", GOOD_LR)
    args = ["run", "--backend", "ray", "--address", ray_cluster, "--population", "1", "--generations", "1",
            "--confirm-seeds", "2", "--max-confirm-seeds", "0", "--min-delta", "0"]   # a t-test needs 2 seeds

    proc = foundry(repo, *args, wait=False)
    wait_for_training(repo)
    running = ledger(repo).trials(status="running")
    proc.kill()   # -9: the trials go on, on the cluster
    proc.wait()
    assert running and all(t["worker"] == "ray:127.0.0.1" for t in running)

    done = foundry(repo, *args, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "re-attached" in done.stdout, done.stdout
    led = ledger(repo)
    trials = led.trials()
    assert len(trials) == 6 and all(t["status"] == "done" for t in trials)   # 2 screens, 2 x 2 confirmations
    assert all(t["attempts"] == 1 for t in trials)   # none started twice ...
    for path in glob.glob(os.path.join(repo.working_tree_dir, "experiments/tiny/gen_0001/runs/*/train.log")):
        assert open(path).read().count("==== ") == 1, path   # ... and each trainer ran once
    assert led.decision(1)["kind"] == "promote" and led.decision(1)["state"] == "committed"
    (commit,) = promote_commits(repo)
    assert list(commit.stats.files) == ["baselines/tiny.yaml"]
    settings = open(os.path.join(repo.working_tree_dir, "experiments/tiny/campaign.yaml")).read()
    assert "backend: ray" in settings and ray_cluster in settings   # saved: a plain restart stays on Ray
