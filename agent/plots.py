"""The PNG plots of `foundry report` (matplotlib, Agg backend: no display needed).

    names = render(data, out_dir, "val_bpb")   # data: agent.campaign_report.gather(); returns the files written

Each plot is written atomically (temp file + rename); a plot with nothing to show is skipped.
"""
from __future__ import annotations

import os
import tempfile


def _save(fig, out_dir: str, name: str) -> str:
    fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".png")
    os.close(fd)
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, os.path.join(out_dir, name))
    return name


def render(data: dict, out_dir: str, metric: str) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    base = data["baseline"]
    if base:
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
        promoted = {p["gen"] for p in data["promotions"] if p["state"] == "committed"}
        for ax, key, label in ((axes[0], "gen", "generation"), (axes[1], "hours", "wall-clock hours")):
            x = [b[key] for b in base]
            y = [b["mean"] for b in base]
            err = [[b["mean"] - b["lo"] for b in base], [b["hi"] - b["mean"] for b in base]]
            ax.errorbar(x, y, yerr=err, fmt="o-", ms=4, capsize=2, label="baseline (mean, 95% CI of its seeds)")
            late = [b for b in base if b["source"] == "confirmation"]
            if late:
                ax.scatter([b[key] for b in late], [b["mean"] for b in late], s=60, marker="D", color="tab:blue",
                           label="new baseline, on its confirmation seeds")
            marks = [b for b in base if b["gen"] in promoted]
            ax.scatter([b[key] for b in marks], [b["mean"] for b in marks], s=90, facecolors="none",
                       edgecolors="tab:red", label="promotion decided here")
            ax.set_xlabel(label)
            ax.grid(alpha=0.3)
        axes[0].set_ylabel(metric)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"baseline {metric} over the campaign")
        written.append(_save(fig, out_dir, "baseline.png"))
        plt.close(fig)
    if data["promotions"]:
        proms = data["promotions"]
        fig, ax = plt.subplots(figsize=(8, 0.5 + 0.45 * len(proms)))
        y = list(range(len(proms)))
        ax.errorbar([p["improvement"] for p in proms], y, fmt="o", capsize=3,
                    xerr=[[p["improvement"] - p["lo"] for p in proms], [p["hi"] - p["improvement"] for p in proms]])
        ax.axvline(0, color="grey", lw=1)
        ax.set_yticks(y, [f"gen {p['gen']}: {p['mutation'][:40]}" for p in proms], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(f"improvement in {metric} on the confirmation seeds (95% t interval)")
        written.append(_save(fig, out_dir, "promotions.png"))
        plt.close(fig)
    if data["effects"]:
        eff = data["effects"]
        fig, ax = plt.subplots(figsize=(8, 0.5 + 0.32 * len(eff)))
        y = list(range(len(eff)))
        means = [100 * e["mean"] for e in eff]
        ax.errorbar(means, y, fmt="o", capsize=2, color="tab:green",
                    xerr=[[100 * (e["mean"] - e["lo"]) for e in eff], [100 * (e["hi"] - e["mean"]) for e in eff]])
        ax.axvline(0, color="grey", lw=1)
        ax.set_yticks(y, [f"{e['type']} (n={e['n']})" for e in eff], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("relative improvement over the same-seed baseline, % (95% t interval)")
        written.append(_save(fig, out_dir, "effects.png"))
        plt.close(fig)
    if data["failures"]:
        fails = data["failures"]
        fig, ax = plt.subplots(figsize=(8, 0.5 + 0.4 * len(fails)))
        ax.barh(range(len(fails)), [f["count"] for f in fails], color="tab:orange")
        ax.set_yticks(range(len(fails)), [f"{f['status']}: {f['reason'][:60]}" for f in fails], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("trials")
        written.append(_save(fig, out_dir, "failures.png"))
        plt.close(fig)
    return written
