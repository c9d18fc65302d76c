"""foundry.runner.pool: pinning, classification of outcomes, timeouts that kill the whole group.

These tests are about the pool's own process handling, so the "trainer" is a few lines of
Python standing in for `foundry train` (argv: CONFIG [overrides] --out DIR); the supervisor's
end-to-end tests in tests/agent/ run the real trainer.
"""
import json
import os
import sys
import time

from foundry.runner.pool import (
    TrialSpec,
    WorkerPool,
    classify,
    kill_orphan,
    plan_workers,
)

FAKE = """
import json, os, subprocess, sys, time
out = sys.argv[sys.argv.index('--out') + 1]
mode = open(sys.argv[1]).read().strip()
if mode in ('done', 'wait'):
    if mode == 'wait':
        time.sleep(0.4)
    args = sys.argv[2:]
    nproc = int(args[args.index('--nproc') + 1]) if '--nproc' in args else 1
    json.dump({'status': 'done', 'val_bpb': 1.5, 'wall_s': 0.1, 'threads': os.environ['OMP_NUM_THREADS'],
               'overrides': args[:args.index('--out')], 'nproc': nproc,
               'gpus': os.environ.get('CUDA_VISIBLE_DEVICES')}, open(os.path.join(out, 'summary.json'), 'w'))
elif mode == 'crash':
    raise RuntimeError('deliberately broken component')
elif mode == 'diverge':
    json.dump({'status': 'diverged', 'val_loss': float('nan')}, open(os.path.join(out, 'summary.json'), 'w'))
    sys.exit(3)
elif mode == 'oom':
    os.kill(os.getpid(), 9)
elif mode == 'hang':
    child = subprocess.Popen(['sleep', '300'])
    open(os.path.join(out, 'child.pid'), 'w').write(str(child.pid))
    time.sleep(300)
"""


def dead(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"   # a zombie is dead too
    except OSError:
        return True


def spec(tmp_path, name, mode, **kw):
    cfg = tmp_path / f"{name}.txt"
    cfg.write_text(mode)
    return TrialSpec(name, str(cfg), str(tmp_path / "runs" / name), ["train.seed=7"], **kw)


def make_pool(n=2, timeout_s=None, **kw):
    return WorkerPool(plan_workers(n, gpus=[], cores=4), timeout_s=timeout_s, grace_s=0.5,
                      command=[sys.executable, "-c", FAKE], **kw)


def test_outcomes_are_classified_with_reasons(tmp_path):
    specs = [spec(tmp_path, m, m) for m in ("done", "crash", "diverge", "oom")]
    events = []
    results = {r.trial_id: r for r in make_pool().run(specs, on_event=events.append, poll_s=0.05)}
    assert results["done"].status == "done" and results["done"].summary["val_bpb"] == 1.5
    assert results["done"].summary["threads"] == "2"            # 4 cores split over 2 workers
    assert results["done"].summary["overrides"] == ["train.seed=7"]
    assert results["crash"].status == "failed"
    assert "RuntimeError: deliberately broken component" in results["crash"].reason
    assert "Traceback" in results["crash"].log_tail
    assert results["diverge"].status == "diverged"
    assert results["oom"].status == "failed" and "SIGKILL" in results["oom"].reason
    started = [e for e in events if e.kind == "started"]
    assert len(started) == 4 and {e.worker.name for e in started} == {"cpu0", "cpu1"}
    assert os.path.exists(tmp_path / "runs" / "crash" / "train.log")


def test_hanging_trial_is_killed_with_its_whole_group(tmp_path):
    pool = make_pool(1, timeout_s=1.5)
    start = time.time()
    (result,) = pool.run([spec(tmp_path, "hang", "hang")], poll_s=0.05)
    assert result.status == "timeout" and "timed out" in result.reason
    assert time.time() - start < 10
    child = int((tmp_path / "runs" / "hang" / "child.pid").read_text())
    deadline = time.time() + 5
    while not dead(child) and time.time() < deadline:
        time.sleep(0.05)
    assert dead(child), "the trainer's own child survived the timeout"


def test_stop_interrupts_running_trials_and_drops_the_queue(tmp_path):
    pool = make_pool(1)
    pool.submit(spec(tmp_path, "a", "hang"))
    pool.submit(spec(tmp_path, "b", "done"))
    started = pool.poll()
    assert [e.spec.trial_id for e in started] == ["a"]
    time.sleep(0.3)
    (event,) = pool.stop()
    assert event.result.status == "interrupted" and not pool.busy()


def test_trials_of_several_devices_share_the_workers_without_oversubscription(tmp_path):
    """Trials of 2 and 1 workers on 3 GPU workers: each gets its GPUs as one CUDA_VISIBLE_DEVICES group
    and `--nproc` as many processes; never more workers busy than there are; first in, first out."""
    workers = plan_workers("auto", gpus=["0", "1", "2"], cores=6)
    pool = WorkerPool(workers, grace_s=0.5, command=[sys.executable, "-c", FAKE], devices_per_trial=2)
    sizes = {"a": 0, "b": 1, "c": 0, "d": 1, "e": 1, "f": 0}   # 0: the pool's default, 2
    specs = [spec(tmp_path, name, "wait", nproc=n) for name, n in sizes.items()]
    busy, peak, order, held = 0, 0, [], {}

    def on_event(event):
        nonlocal busy, peak
        size = pool.size(event.spec)
        if event.kind == "started":
            busy += size
            order.append(event.spec.trial_id)
            held[event.spec.trial_id] = event.worker
        else:
            busy -= size
        peak = max(peak, busy)
    results = {r.trial_id: r for r in pool.run(specs, on_event=on_event, poll_s=0.02)}
    assert all(r.status == "done" for r in results.values()) and peak <= 3
    assert order == list(sizes)   # a 2-device trial waiting for room is not overtaken by 1-device ones
    assert results["a"].summary["nproc"] == 2 and len(results["a"].summary["gpus"].split(",")) == 2
    assert results["b"].summary["nproc"] == 1 and results["b"].summary["overrides"] == ["train.seed=7"]
    assert held["a"].device.startswith("cuda:") and "+" in held["a"].name
    assert results["a"].summary["threads"] == "2"   # each process keeps one worker's share of the cores
    try:
        pool.submit(spec(tmp_path, "huge", "done", nproc=4))
        raise AssertionError("a trial wider than the pool was accepted")
    except ValueError as e:
        assert "needs 4 workers" in str(e)


def test_stale_summary_is_not_read_as_this_attempts(tmp_path):
    s = spec(tmp_path, "crash", "crash")
    os.makedirs(s.out_dir)
    with open(os.path.join(s.out_dir, "summary.json"), "w") as f:
        json.dump({"status": "done", "val_bpb": 1.0}, f)
    (result,) = make_pool(1).run([s], poll_s=0.05)
    assert result.status == "failed"


def test_plan_workers_pins_gpus_and_splits_cpu_cores():
    gpus = plan_workers("auto", gpus=["2", "5"], cores=16)
    assert [w.env["CUDA_VISIBLE_DEVICES"] for w in gpus] == ["2", "5"]
    assert [w.device for w in gpus] == ["cuda:2", "cuda:5"] and gpus[0].env["OMP_NUM_THREADS"] == "8"
    cpus = plan_workers(3, gpus=[], cores=6)
    assert len(cpus) == 3 and all(w.env["OMP_NUM_THREADS"] == "2" and w.env["CUDA_VISIBLE_DEVICES"] == ""
                                  for w in cpus)
    assert len(plan_workers("auto", gpus=[], cores=2)) == 2


def test_classify_and_kill_orphan_refuse_strangers():
    assert classify(0, {"status": "done"}, "", "", None) == ("done", "")
    assert classify(0, None, "", "", None)[0] == "failed"
    assert classify(1, {"status": "failed", "error": "ValueError: x"}, "", "", None) == ("failed", "ValueError: x")
    assert not kill_orphan(os.getpid(), "/no/such/run/dir")   # our own pid, but not a trial of that folder


def test_preloaded_trials_run_the_real_cli_and_orphans_are_found_by_their_log(tmp_path):
    """Trials forked by the pool's one preloader run `foundry train` itself (bad input: exit 2 with
    its one-line error in the log), each with its own worker's thread count; a trial left running
    is recognised by its log and killed."""
    from foundry.runner.preloader import Preloader
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    tiny = os.path.join(repo_root, "baselines", "tiny.yaml")
    overrides = ["model.n_layer=1", "model.n_embd=32", "model.n_head=2", "model.block_size=32",
                 "train.batch_size=4", "eval.bytes=256", "train.dtype=fp32"]
    preloader = Preloader(dict(os.environ), str(tmp_path))
    try:
        bad = tmp_path / "bad.yaml"
        bad.write_text("model:\n  n_layer: -1\n")
        log = str(tmp_path / "bad.log")
        proc = preloader.spawn(["train", str(bad), "--out", str(tmp_path / "bad")], str(tmp_path), log)
        while proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() == 2 and "model.n_layer" in open(log).read()

        for i, worker in enumerate(plan_workers(2, gpus=[], cores=2)[:1] + plan_workers(1, gpus=[], cores=2)):
            out = tmp_path / f"threads{i}"
            proc = preloader.spawn(["train", tiny, *overrides, "budget.tokens=256", "--out", str(out)],
                                   str(tmp_path), str(tmp_path / "threads.log"), worker.env)
            while proc.poll() is None:
                time.sleep(0.05)
            assert proc.poll() == 0
            device = json.load(open(out / "summary.json"))["device"]
            assert f"x{worker.env['OMP_NUM_THREADS']} threads" in device, device

        out = tmp_path / "long"
        out.mkdir()
        proc = preloader.spawn(["train", tiny, *overrides, "budget.tokens=0", "budget.seconds=60",
                                "--out", str(out)], str(tmp_path), str(out / "train.log"))
        deadline = time.time() + 120
        while not (out / "progress.json").exists() and time.time() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None
        assert not kill_orphan(proc.pid, str(tmp_path / "elsewhere"))
        assert kill_orphan(proc.pid, str(out))
        while proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() == -9
    finally:
        preloader.close()


def test_a_trial_of_two_workers_trains_on_two_processes_with_the_real_trainer(tmp_path, tiny_text):
    """devices_per_trial=2 on CPU workers: the preloaded worker starts `foundry train ... --nproc 2`
    (torchrun, DDP) and the trial, holding both workers, writes one summary."""
    from tests.conftest import REPO, tiny_overrides
    pool = WorkerPool(plan_workers(2, gpus=[], cores=2), grace_s=0.5, devices_per_trial=2)
    trial = TrialSpec("pair", os.path.join(REPO, "baselines", "tiny.yaml"), str(tmp_path / "runs" / "pair"),
                      tiny_overrides(tiny_text, 2))
    try:
        assert pool.free_slots() == 1
        (result,) = pool.run([trial])
    finally:
        pool.close()
    assert result.status == "done", result.log_tail
    assert (result.summary["strategy"], result.summary["world_size"], result.summary["steps"]) == ("ddp", 2, 2)
    assert result.worker == "cpu0+cpu1"
    assert open(os.path.join(trial.out_dir, "train.log")).read().count("torchrun: 2 processes") == 1
