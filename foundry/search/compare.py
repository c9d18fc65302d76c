"""`foundry compare A.yaml B.yaml --seeds N`: is B really better than A, or is it seed noise?

    report = run_compare("baselines/tiny.yaml", "experiments/lr_x2.yaml", seeds=3, workers=plan_workers(2),
                         out_dir="experiments/compare/x")

Both configs train with the same seeds (seed, seed+1, ...), submitted interleaved A1 B1 A2 B2 ...
so that whatever the machine is doing hits both alike. The report gives each config's mean,
spread and 95% t interval, and the difference B - A with its t interval, unpaired (Welch) and
paired by seed (the seeds are shared, so the paired interval is usually the tighter one).
Runs that already finished in out_dir are reused: re-running the command only fills the gaps.
"""
from __future__ import annotations

import hashlib
import os

from foundry.catalog import load
from foundry.errors import UserError
from foundry.io import read_summary
from foundry.runner.pool import TrialSpec, WorkerPool
from foundry.search import stats, trials


def default_dir(a_path: str, b_path: str) -> str:
    key = hashlib.sha1(f"{os.path.abspath(a_path)}|{os.path.abspath(b_path)}".encode()).hexdigest()[:8]
    names = "-vs-".join(os.path.splitext(os.path.basename(p))[0] for p in (a_path, b_path))
    return os.path.join("experiments", "compare", f"{names}-{key}")


def _done_summary(run_dir: str) -> dict | None:
    summary = read_summary(run_dir)
    return summary if summary and summary.get("status") == "done" else None


def _describe(values: list[float], records: list[dict], level: float) -> dict:
    out = {"values": values, "n": len(values)}
    if values:
        out.update(mean=stats.mean(values), stdev=stats.stdev(values), ci=list(stats.confidence_interval(values, level)))
    for key in ("val_loss", "tokens_per_s", "train_flops", "qpc"):
        got = [r[key] for r in records if r.get(key) is not None]
        out[key] = stats.mean(got) if got else None
    return out


def run_compare(a_path: str, b_path: str, seeds: int, workers, out_dir: str, metric: str = "val_bpb",
                level: float = 0.95, timeout_s: float | None = None, log=print, command=None) -> dict:
    if seeds < 1:
        raise UserError(f"--seeds: must be positive, got {seeds}")
    if not 0.0 < level < 1.0:
        raise UserError(f"--level: must be in (0, 1), got {level}")
    configs = {"A": a_path, "B": b_path}
    first_seed = load(a_path).train.seed
    load(b_path)  # validate both before training anything
    specs = []
    for i in range(seeds):  # interleaved: A1 B1 A2 B2 ...
        for side, path in configs.items():
            run_dir = os.path.join(out_dir, f"{side}-seed{first_seed + i}")
            if _done_summary(run_dir) is None:
                resume = os.path.isdir(os.path.join(run_dir, "checkpoint"))
                specs.append(TrialSpec(f"{side}-seed{first_seed + i}", path, run_dir,
                                       [f"train.seed={first_seed + i}"], resume=resume))
    if specs:
        log(f"training {len(specs)} runs on {len(workers)} workers -> {out_dir}")
        pool = WorkerPool(workers, timeout_s=timeout_s, **({"command": command} if command else {}))
        try:
            for result in pool.run(specs, on_event=lambda e: e.result and log(
                    f"  {e.spec.trial_id}: {e.result.status} {metric} {(e.result.summary or {}).get(metric)}")):
                if result.status != "done":
                    log(f"  {result.trial_id} {result.status}: {result.reason}")
        finally:
            pool.close()  # the pool's preloader too
    values, records, pairs = {"A": [], "B": []}, {"A": [], "B": []}, []
    for i in range(seeds):
        got = {}
        for side in configs:
            run_dir = os.path.join(out_dir, f"{side}-seed{first_seed + i}")
            summary = _done_summary(run_dir)
            if summary is not None and summary.get(metric) is not None:
                got[side] = float(summary[metric])
                values[side].append(got[side])
                records[side].append(trials.run_record(summary, run_dir))
        if len(got) == 2:
            pairs.append((got["A"], got["B"]))
    report = {"metric": metric, "level": level, "dir": out_dir, "seeds": [first_seed + i for i in range(seeds)],
              "A": {"config": a_path, **_describe(values["A"], records["A"], level)},
              "B": {"config": b_path, **_describe(values["B"], records["B"], level)}}
    tests = {"difference": (values["A"], values["B"], False),
             "paired": ([a for a, _ in pairs], [b for _, b in pairs], True)}
    for key, (a, b, paired) in tests.items():
        if a and b:
            d = stats.difference(a, b, paired=paired)
            lo, hi = d.interval(level)  # of the improvement A - B
            report[key] = {"b_minus_a": -d.improvement, "ci": [-hi, -lo], "se": d.se, "df": d.df,
                           "test": d.test, "relative": d.relative, "n": len(b)}
    return report


def format_report(r: dict) -> str:
    rows = [{"config": f"{side}: {r[side]['config']}", **r[side]} for side in ("A", "B")]
    columns = [("config", "config", ""), ("mean", r["metric"], ".4f"), ("stdev", "± sd", ".4f"), ("n", "seeds", ""),
               ("val_loss", "val_loss", ".4f"), ("tokens_per_s", "tok/s", ".0f"), ("train_flops", "FLOPs", ".3g"),
               ("qpc", "QPC", ".3g")]
    lines = [trials.table(rows, columns), ""]
    pct = int(round(r["level"] * 100))
    for key, name in (("difference", "unpaired"), ("paired", "paired by seed")):
        if key in r:
            d = r[key]
            verdict = "B lower" if d["ci"][1] < 0 else "B higher" if d["ci"][0] > 0 else "no clear difference"
            lines.append(f"B - A ({name}): {d['b_minus_a']:+.4f}, {pct}% CI [{d['ci'][0]:+.4f}, {d['ci'][1]:+.4f}]"
                         f"  -> {verdict}")
    if r["A"]["n"] < 2 or r["B"]["n"] < 2:   # the "interval" above is then just the point
        lines.append("(fewer than 2 seeds on a side: the spread, and so the interval, is not estimated)")
    return "\n".join(lines)
