"""Where trials run, behind one interface: the local worker pool or a Ray cluster.

    pool = open_pool("local", workers="auto", devices_per_trial=1, timeout_s=3600, cwd=repo_root)
    pool = open_pool("ray", address="auto", devices_per_trial=2, cpus_per_trial=4, cwd=repo_root,
                     namespace=pool_namespace(campaign_dir))
    pool.submit(spec); pool.poll(); pool.busy(); pool.running(); pool.free_slots(); pool.stop(); pool.close()
    pool.recover([(spec, pid), ...])    # ids of trials a previous driver left that are re-attached

Both pools (pool.WorkerPool, ray_pool.RayPool) take TrialSpecs and report started / finished
Events, so the supervisor (agent/loop.py), sweeps (search/sweep.py) and genetics open a pool here
and never ask which. A command-line tool adds --backend/--address with add_backend_arguments.
Ray is an optional extra: without it `--backend ray` is a one-line error saying how to install it.
"""
from __future__ import annotations

import hashlib
import os

from foundry.errors import UserError
from foundry.runner.pool import WorkerPool, plan_workers

BACKENDS = ("local", "ray")


def open_pool(backend: str = "local", workers="auto", *, devices_per_trial: int = 1, cpus_per_trial: int = 1,
              address: str | None = None, timeout_s: float | None = None, cwd: str | None = None,
              command: list[str] | None = None, preload: bool | None = None, namespace: str = "foundry",
              env: dict | None = None):
    """A pool of the backend: local (`workers` as plan_workers takes it) or ray (resources of the
    cluster at `address`: auto, local (a fresh one-machine Ray), or HOST:PORT). `env` (local only)
    reaches every trial, e.g. the supervised repository first on PYTHONPATH (agent/code.py); Ray
    workers run the code their machines have, and a trial that ran other code fails its check."""
    if backend not in BACKENDS:
        raise UserError(f"--backend: unknown {backend!r} (valid: {', '.join(BACKENDS)})")
    if devices_per_trial < 1 or cpus_per_trial < 1:
        raise UserError("devices (gpus_per_trial) and cpus_per_trial: must be at least 1")
    if backend == "ray":
        from foundry.runner.ray_pool import RayPool
        return RayPool(address or "auto", devices_per_trial, cpus_per_trial, timeout_s, command=command, cwd=cwd,
                       namespace=namespace)
    try:
        return WorkerPool(plan_workers(workers), timeout_s=timeout_s, command=command, cwd=cwd, preload=preload,
                          devices_per_trial=devices_per_trial, env=env)
    except ValueError as e:
        raise UserError(f"workers: {e}") from None


def pool_namespace(folder: str) -> str:
    """A Ray namespace of its own for the campaign or search in `folder` (trial ids are unique there)."""
    return "foundry-" + hashlib.sha1(os.path.abspath(folder).encode()).hexdigest()[:12]


def add_backend_arguments(parser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, help="where trials run: local (worker processes on this "
                                                            "machine, the default) or ray (a Ray cluster)")
    parser.add_argument("--address", help="with --backend ray: auto (RAY_ADDRESS or the cluster `ray start` "
                                          "started here), local (a fresh Ray on this machine) or HOST:PORT")
