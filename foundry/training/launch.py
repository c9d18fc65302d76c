"""Several processes for one run: `foundry train CONFIG --nproc N` starts torchrun for the user.

    code = launch("train", ["baselines/tiny.yaml", "--out", "runs/tiny"], 2, cfg, "runs/tiny")

torchrun (`python -m torch.distributed.run --standalone`: a rendezvous on a free local port, so
trials side by side do not collide) starts N copies of `python -m foundry.training.cli SUBCOMMAND
ARGV`, each with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT set; parallel.py takes
it from there. Each rank gets OMP_NUM_THREADS (this process's, else the cores divided by N), and
CUDA_VISIBLE_DEVICES as given (the pool hands a trial its GPUs that way). torchrun's own exit code
is 1 for any failed rank, so the run's code comes from the summary.json it wrote (EXIT_CODES);
without one the run failed and the failed rank's error is recorded in summary.json. SIGINT and
SIGTERM go to torchrun, which passes them to the ranks: they agree on a step, checkpoint, exit 130.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

from foundry.errors import UserError
from foundry.io import atomic_write_text, read_summary
from foundry.training.parallel import check_world, die_with_parent
from foundry.training.run_files import EXIT_CODES


def torchrun_command(subcommand: str, argv: list[str], nproc: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "foundry.training.cli", subcommand, *argv]


def check_nproc(cfg, nproc: int) -> None:
    """Before starting anything: UserError unless nproc processes can train `cfg` from here."""
    if nproc < 1:
        raise UserError(f"--nproc: must be at least 1, got {nproc}")
    if "WORLD_SIZE" in os.environ:
        raise UserError("--nproc: this process already runs under torchrun (WORLD_SIZE is set); "
                        "leave --nproc out and let torchrun start the processes")
    if nproc > 1:
        check_world(cfg, nproc)


def without_nproc(argv: list[str]) -> list[str]:
    """argv less its --nproc option (what each of the processes torchrun starts is given)."""
    out, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == "--nproc":
            skip = True
        elif not item.startswith("--nproc="):
            out.append(item)
    return out


def rank_prefix() -> str:
    """'rank R: ' under torchrun (for errors a rank records), else ''."""
    return f"rank {os.environ['RANK']}: " if "WORLD_SIZE" in os.environ else ""


def launch(subcommand: str, argv: list[str], nproc: int, cfg, out_dir: str) -> int:
    """Run `foundry SUBCOMMAND ARGV` (which trains `cfg`) on nproc processes; the run's exit code."""
    check_nproc(cfg, nproc)
    cores = os.cpu_count() or 1
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, cores // nproc)))}
    started = time.time()
    print(f"torchrun: {nproc} processes for {out_dir}", flush=True)
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:   # torchrun and the ranks handle the signals; this process only waits for them
        proc = subprocess.Popen(torchrun_command(subcommand, argv, nproc), env=env,
                                preexec_fn=_torchrun_child if sys.platform == "linux" else None)
        returncode = proc.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    summary = read_summary(out_dir)
    path = os.path.join(out_dir, "summary.json")
    if summary and os.path.getmtime(path) >= started:
        return EXIT_CODES.get(summary.get("status"), 1)
    if os.path.isdir(out_dir):   # no rank got as far as a summary: say so in the run folder
        failed = {"status": "failed", "error": f"torchrun exited with code {returncode} before any rank "
                  f"wrote summary.json{_first_error(out_dir)}", "world_size": nproc}
        atomic_write_text(path, json.dumps(failed, indent=2) + "\n")
    return returncode or 1


def _torchrun_child() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)    # undo the parent's SIG_IGN, which exec would keep
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent()


def _first_error(out_dir: str) -> str:
    """': LINE' for the first exception line in the run's train.log (the pool's log), else ''."""
    try:
        with open(os.path.join(out_dir, "train.log"), encoding="utf-8", errors="replace") as f:
            text = f.read()[-20000:]
    except OSError:
        return ""
    match = re.search(r"^(?:\[rank\d+\]: )?(\w+(?:Error|Exception): .*)$", text, re.MULTILINE)
    return f": {match.group(1)[:300]}" if match else ""
