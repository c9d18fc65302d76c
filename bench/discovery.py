"""Discovery you can trust: unattended `foundry run` on baselines/shakespeare_char.yaml, random against
learned proposer, every promotion re-checked afterwards on 3 fresh seeds never used in the campaign.

    FOUNDRY_DATA=../shared/data python bench/discovery.py [--hours 2] [--workers 2] [--population 3]
        [--steps N] [--eval-bytes B] [--proposers random,learned] [--out experiments/bench/discovery] [--smoke]

Per proposer, a clone of this checkout's HEAD in OUT/PROPOSER/repo is the supervised repository:
promotions are commits there, never here, and its own foundry runs (agent/code.py). The campaign
is `python -m foundry.cli run` inside the clone with --proposer PROPOSER, stopped with SIGTERM
when its hours are spent (a generation cut short is left unfinished); the proposers' campaigns
run side by side (--one-at-a-time: one after the other), so both see the same machine load.
The clone's baseline validates once, at the end (eval.interval 2000 instead of 250: the ranked
val_bpb is the same; intermediate evaluations cost a sixth of a trial). Resumable: the hours already spent are kept in OUT/PROPOSER/state.json and a second start
only runs the rest; the re-check reuses finished runs. The load average of the machine is
sampled every minute (other people's jobs slow trials down; tokens per trial are fixed).

Re-check, after every campaign has ended: the baseline before the first promotion and the baseline
after each promotion (read from the clone's git history) are trained on seeds 9000001..9000003, in
one pool of --workers workers, into OUT/recheck (a baseline the lineages share, the first, is
trained once). A promotion is kept when
its mean improvement on those seeds is positive (the paired t-test's p is shown too), else
overturned. Figures: val_bpb of the first and the last baseline on the fresh seeds and the
reduction, promotions kept / overturned, trials per hour, campaign hours, mean load average.
--steps N shrinks the baseline's budget to N steps (warmup N/20, as the baseline's 100 of 2000) and
--eval-bytes B its validation slice, for a machine that cannot train 2000-step trials fast enough;
the sizes are written into the clone's baseline commit. --smoke (30 steps) tests the bench itself.
Render the campaign reports afterwards: foundry report OUT/PROPOSER/repo/experiments/discovery-PROPOSER.
"""
import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import git
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from agent.code import trial_env  # noqa: E402
from foundry.io import atomic_write_text, read_summary  # noqa: E402
from foundry.runner.pool import TrialSpec, WorkerPool, plan_workers  # noqa: E402
from foundry.search import stats  # noqa: E402

BASELINE = "baselines/shakespeare_char.yaml"
FRESH_SEEDS = (9000001, 9000002, 9000003)
ONE_EVAL = {"eval": {"interval": 2000}}   # validate once, at the end (step 2000): the metric is unchanged
SMOKE = {"budget": {"steps": 30}, "eval": {"interval": 30, "bytes": 4096}, "train": {"warmup_steps": 3}}


def load_state(path: str) -> dict:
    return json.load(open(path)) if os.path.exists(path) else {"spent_s": 0.0, "load": []}


def sizes(args) -> tuple[dict, str]:
    """(baseline settings the bench changes, the commit message saying so)."""
    if args.smoke:
        return SMOKE, "bench: smoke-sized baseline"
    changes = {section: dict(values) for section, values in ONE_EVAL.items()}
    what = ["validate once, at the end"]
    if args.steps:
        changes["budget"] = {"steps": args.steps}
        changes["train"] = {"warmup_steps": max(1, args.steps // 20)}
        changes["eval"]["interval"] = args.steps
        what.append(f"{args.steps} steps (warmup {max(1, args.steps // 20)})")
    if args.eval_bytes is not None:
        changes["eval"]["bytes"] = args.eval_bytes
        what.append(f"eval.bytes {args.eval_bytes}")
    return changes, "bench: " + ", ".join(what)


def clone(out: str, args) -> git.Repo:
    folder = os.path.join(out, "repo")
    if os.path.isdir(folder):
        return git.Repo(folder)
    repo = git.Repo.clone_from(REPO, folder)
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "foundry bench")
        cw.set_value("user", "email", "bench@localhost")
    path = os.path.join(folder, BASELINE)
    data = yaml.safe_load(open(path))
    changes, message = sizes(args)
    for section, values in changes.items():
        data.setdefault(section, {}).update(values)
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
    repo.index.add([BASELINE])
    repo.index.commit(message)
    return repo


def sample_load(state: dict, stop: threading.Event) -> None:
    while not stop.wait(60):
        state["load"].append(os.getloadavg()[0])


def campaign(proposer: str, args) -> tuple[str, git.Repo]:
    out = os.path.join(args.out, proposer)
    os.makedirs(out, exist_ok=True)
    state_path = os.path.join(out, "state.json")
    state = load_state(state_path)
    repo = clone(out, args)
    root = repo.working_tree_dir
    left = args.hours * 3600 - state["spent_s"]
    if left > 0:
        argv = [sys.executable, "-m", "foundry.cli", "run", "--baseline", BASELINE, "--campaign",
                f"discovery-{proposer}", "--workers", str(args.workers), "--population", str(args.population),
                "--proposer", proposer]
        print(f"{proposer}: {left / 3600:.2f} h of campaign left; {' '.join(argv[1:])} in {root}", flush=True)
        stop = threading.Event()
        threading.Thread(target=sample_load, args=(state, stop), daemon=True).start()
        started = time.time()
        with open(os.path.join(out, "supervisor.out"), "a") as log:
            proc = subprocess.Popen(argv, cwd=root, stdout=log, stderr=subprocess.STDOUT)
            try:
                proc.wait(timeout=left)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)   # the supervisor stops its trials and exits 130
                proc.wait()
            finally:
                stop.set()
                state["spent_s"] += time.time() - started
                atomic_write_text(state_path, json.dumps(state))
    return proposer, repo


def lineage(repo: git.Repo) -> list[tuple[str, str]]:
    """[(commit, change)] of the baseline file: the first is the one the campaign started from."""
    commits = list(repo.iter_commits(paths=BASELINE))[::-1]
    start = max((i for i, c in enumerate(commits) if "Foundry-Promotion:" not in c.message), default=0)
    return [(c.hexsha, c.summary if i else "(start)") for i, c in enumerate(commits[start:])]


def recheck_run(folder: str, key: str, seed: int) -> str:
    """The run folder of one re-check: baseline KEY (see recheck) trained on a fresh seed."""
    return os.path.join(folder, f"{key}-seed{seed}")


def recheck(campaigns: list[tuple[str, git.Repo]], args) -> list[dict]:
    """Every proposer's baselines trained on the fresh seeds, in one pool of args.workers workers.
    A run is named by the baseline file's content and the code it runs (the clone's start), so a
    baseline that several lineages share (the first, always) is trained once: OUT/recheck/KEY-seedS."""
    folder = os.path.join(args.out, "recheck")
    os.makedirs(folder, exist_ok=True)
    chains, pools = [], {}   # pools: code commit -> (clone root, {(key, seed): TrialSpec})
    for proposer, repo in campaigns:
        chain = lineage(repo)
        code = repo.commit(chain[0][0]).parents[0].hexsha   # this checkout's HEAD when the clone was made
        keys = []
        for sha, _ in chain:
            text = repo.git.show(f"{sha}:{BASELINE}", strip_newline_in_stdout=False)
            key = hashlib.sha256(f"{code}\n{text}".encode()).hexdigest()[:12]
            path = os.path.join(folder, f"{key}.yaml")
            if not os.path.exists(path):
                atomic_write_text(path, text)
            keys.append(key)
            for seed in FRESH_SEEDS:
                run = recheck_run(folder, key, seed)
                if (read_summary(run) or {}).get("status") != "done":
                    pools.setdefault(code, (repo.working_tree_dir, {}))[1][key, seed] = TrialSpec(
                        f"recheck-{key}-s{seed}", path, run, [f"train.seed={seed}"])
        chains.append((proposer, repo, chain, keys))
    for root, specs in pools.values():
        print(f"re-checking {len({k for k, _ in specs})} baselines on fresh seeds {FRESH_SEEDS}: {len(specs)} runs",
              flush=True)
        pool = WorkerPool(plan_workers(args.workers), cwd=root, env={**trial_env(root), "FOUNDRY_DATA":
                                                                        os.environ["FOUNDRY_DATA"]})
        for r in pool.run(list(specs.values()), on_event=lambda e: e.result and print(
                f"  {e.spec.trial_id}: {e.result.status} val_bpb {(e.result.summary or {}).get('val_bpb')}",
                flush=True)):
            if r.status != "done":
                print(f"  {r.trial_id} {r.status}: {r.reason}")
        pool.close()
    return [figures(proposer, repo, chain, keys, folder, args) for proposer, repo, chain, keys in chains]


def figures(proposer: str, repo: git.Repo, chain: list, keys: list[str], folder: str, args) -> dict:
    """One proposer's re-check: each baseline's mean on the fresh seeds; a promotion is kept when the
    baseline after it beats the one before on those seeds (mean paired improvement > 0)."""
    values = {(i, s): (read_summary(recheck_run(folder, key, s)) or {}).get("val_bpb")
              for i, key in enumerate(keys) for s in FRESH_SEEDS}
    means = [stats.mean([values[i, s] for s in FRESH_SEEDS if values[i, s] is not None] or [float("nan")])
             for i in range(len(chain))]
    promotions = []
    for i in range(1, len(chain)):
        pairs = [(values[i - 1, s], values[i, s]) for s in FRESH_SEEDS
                 if values[i - 1, s] is not None and values[i, s] is not None]
        d = stats.difference([b for b, _ in pairs], [c for _, c in pairs], paired=True) if pairs else None
        promotions.append({"change": chain[i][1], "before": means[i - 1], "after": means[i],
                           "kept": bool(d and d.improvement > 0), "p": d and d.p_value})
    return {"proposer": proposer, "chain": len(chain), "first": means[0], "last": means[-1],
            "promotions": promotions, **ledger_figures(repo.working_tree_dir, proposer), "state": load_state(
                os.path.join(args.out, proposer, "state.json"))}


def ledger_figures(root: str, proposer: str) -> dict:
    from agent.ledger import Ledger

    path = os.path.join(root, "experiments", f"discovery-{proposer}", "ledger.sqlite")
    if not os.path.exists(path):
        return {"trials": 0, "generations": 0}
    led = Ledger(path, readonly=True)
    trials = [t for t in led.trials() if t["finished_at"]]
    done = {}
    for t in trials:
        done[t["status"]] = done.get(t["status"], 0) + 1
    out = {"trials": len(trials), "statuses": done, "generations": len([g for g in led.generations()
                                                                          if g["phase"] == "done"]),
           "decisions": [(d["gen"], d["kind"], d["mutation"]) for d in led.decisions()]}
    led.close()
    return out


def report(r: dict) -> None:
    hours = r["state"]["spent_s"] / 3600
    load = r["state"]["load"]
    kept = sum(p["kept"] for p in r["promotions"])
    print(f"\n== {r['proposer']}: {hours:.2f} h, {r['trials']} trials finished ({r['trials'] / hours if hours else 0:.1f}"
          f" / hour), {r['generations']} generations done, mean load average "
          f"{sum(load) / len(load) if load else float('nan'):.1f} on {os.cpu_count()} cores")
    for p in r["promotions"]:
        print(f"   {'kept      ' if p['kept'] else 'OVERTURNED'} {p['before']:.4f} -> {p['after']:.4f}  "
              f"(fresh-seed paired p {p['p'] if p['p'] is None else round(p['p'], 4)})  {p['change']}")
    print(f"   val_bpb on fresh seeds {FRESH_SEEDS}: first baseline {r['first']:.4f}, last {r['last']:.4f} "
          f"({100 * (r['last'] - r['first']) / r['first']:+.2f}%); promotions kept {kept}, overturned "
          f"{len(r['promotions']) - kept}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hours", type=float, default=2.0, help="campaign hours per proposer")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--population", type=int, default=3)
    p.add_argument("--proposers", default="random,learned")
    p.add_argument("--out", default=os.path.join(REPO, "experiments", "bench", "discovery"))
    p.add_argument("--steps", type=int, help="the baseline's budget in steps (default: its own, 2000)")
    p.add_argument("--eval-bytes", type=int, help="the baseline's eval.bytes (default: its own, the whole split)")
    p.add_argument("--smoke", action="store_true", help="a 30-step baseline: test the bench in minutes")
    p.add_argument("--one-at-a-time", action="store_true", help="run the proposers' campaigns one after the other")
    args = p.parse_args()
    if "FOUNDRY_DATA" not in os.environ:
        print("set FOUNDRY_DATA to the shared data folder (../shared/data)", file=sys.stderr)
        return 2
    os.environ["FOUNDRY_DATA"] = os.path.abspath(os.environ["FOUNDRY_DATA"])
    if git.Repo(REPO).is_dirty(untracked_files=False):
        print(f"{REPO} has uncommitted changes: the bench runs HEAD ({git.Repo(REPO).head.commit.hexsha[:10]}); "
              "commit first", file=sys.stderr)
        return 2
    args.out = os.path.abspath(args.out)
    names = args.proposers.split(",")
    if args.one_at_a_time:
        campaigns = [campaign(name, args) for name in names]
    else:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(len(names)) as pool:
            campaigns = list(pool.map(lambda name: campaign(name, args), names))
    results = recheck(campaigns, args)
    for r in results:
        report(r)
    atomic_write_text(os.path.join(args.out, "results.json"), json.dumps(results, indent=1, default=str))
    if len(results) == 2 and all(r["last"] == r["last"] for r in results):
        a, b = results
        print(f"\n{b['proposer']} vs {a['proposer']}: last baseline {b['last']:.4f} vs {a['last']:.4f} "
              f"({100 * (b['last'] - a['last']) / a['last']:+.2f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
