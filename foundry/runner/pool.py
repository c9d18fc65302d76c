"""The worker pool: every trial is its own `foundry train` process on a pinned worker.

    pool = WorkerPool(plan_workers("auto"), timeout_s=3600)
    results = pool.run([TrialSpec("t1", "variant.yaml", "runs/t1", ["train.seed=1"])])

Workers: one per GPU, pinned with CUDA_VISIBLE_DEVICES; else N CPU workers splitting the cores
(OMP_NUM_THREADS each, CUDA hidden). A trial runs `foundry train CONFIG [overrides] --out DIR
[--resume]` in its own session / process group, logging to DIR/train.log; a wall-clock timeout
or `stop()` kills the whole group (SIGTERM, SIGKILL after a grace period), and a trial dies
with the process that started it (Linux), so a supervisor killed with -9 leaves none behind.
On Linux trials are forked from one preloader per pool that has imported torch but none of
foundry (preloader.py, forkserver.py), each child taking its worker's environment: edited code is
still picked up, and the import cost is paid once per pool.
Non-blocking use (the supervisor): `submit()`, then `poll()` returns the started / finished
events since the last call; `run()` is the blocking form (sweeps).

A trial may take several workers (devices_per_trial, or TrialSpec.nproc): it gets their GPUs as
one CUDA_VISIBLE_DEVICES group (or their CPU shares) and runs as that many processes under
torchrun (`--nproc K`). Trials start first in, first out, each once enough workers are free, so
trials of different sizes share the machine and no worker ever runs two. runner/ray_pool.py is
the same interface on a Ray cluster.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from foundry.io import read_summary
from foundry.runner.preloader import Preloader, die_with_parent, kill_orphan  # noqa: F401 (re-exported)

TRAIN_COMMAND = [sys.executable, "-m", "foundry.training.cli", "train"]
LOG_NAME = "train.log"
# present wherever torch.cuda can see a device: the NVIDIA driver, or ROCm's kernel driver
GPU_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd")


@dataclass
class Worker:
    name: str                 # "cpu0", "gpu1"
    device: str               # "cpu" or "cuda:<physical index>"
    env: dict = field(default_factory=dict)


@dataclass
class TrialSpec:
    trial_id: str
    config_path: str
    out_dir: str
    overrides: list = field(default_factory=list)
    resume: bool = False
    timeout_s: float | None = None    # None: the pool's default
    nproc: int = 0                    # workers (devices) and processes for the trial; 0: the pool's default


@dataclass
class TrialResult:
    trial_id: str
    status: str               # done | diverged | failed | timeout | interrupted
    returncode: int | None
    summary: dict | None
    reason: str
    log_tail: str
    worker: str
    device: str
    started_at: float
    finished_at: float

    @property
    def wall_s(self) -> float:
        return self.finished_at - self.started_at


@dataclass
class Event:
    kind: str                 # "started" | "finished"
    spec: TrialSpec
    worker: Worker
    pid: int = 0
    result: TrialResult | None = None


@dataclass
class _Running:
    spec: TrialSpec
    worker: Worker            # the trial's worker, or its workers combined (combine_workers)
    proc: subprocess.Popen
    log_offset: int
    started_at: float
    deadline: float | None
    kill_reason: str = ""     # "timeout" | "interrupted" once we decided to kill it
    kill_at: float = 0.0      # when SIGKILL follows the SIGTERM
    workers: list = field(default_factory=list)   # the pool's workers it holds


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def visible_gpus() -> list[str]:
    """Physical GPU ids this process may use (respects an inherited CUDA_VISIBLE_DEVICES)."""
    if not any(os.path.exists(p) for p in GPU_DRIVER_FILES):
        return []   # no GPU driver: skip importing torch (seconds of the supervisor's start-up)
    try:
        import torch
        count = torch.cuda.device_count()
    except Exception:  # no torch / broken driver: run on CPU
        return []
    inherited = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [s.strip() for s in inherited.split(",") if s.strip()] if inherited else []
    return ids[:count] if ids else [str(i) for i in range(count)]


def plan_workers(n="auto", gpus: list[str] | None = None, cores: int | None = None) -> list[Worker]:
    """One worker per GPU (more than one per GPU if n asks for it); else n CPU workers."""
    gpus = visible_gpus() if gpus is None else gpus
    cores = cores or cpu_count()
    if n != "auto" and (not isinstance(n, int) or n < 1):
        raise ValueError(f"workers: expected a positive number or 'auto', got {n!r}")
    if gpus:
        count = len(gpus) if n == "auto" else n
        threads = max(1, cores // count)
        return [Worker(f"gpu{i}", f"cuda:{gpus[i % len(gpus)]}",
                       {"CUDA_VISIBLE_DEVICES": gpus[i % len(gpus)], "OMP_NUM_THREADS": str(threads)})
                for i in range(count)]
    count = min(cores, 8) if n == "auto" else n
    threads = max(1, cores // count)
    return [Worker(f"cpu{i}", "cpu", {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": str(threads),
                                       "MKL_NUM_THREADS": str(threads)}) for i in range(count)]


def combine_workers(workers: list[Worker]) -> Worker:
    """One worker standing for several: "gpu0+gpu1" on cuda:0,1, their GPUs as one CUDA_VISIBLE_DEVICES
    group (each process keeps one worker's threads)."""
    if len(workers) == 1:
        return workers[0]
    gpus = [w.device.split(":", 1)[1] for w in workers if w.device.startswith("cuda:")]
    env = {**workers[0].env, "CUDA_VISIBLE_DEVICES": ",".join(gpus)}
    return Worker("+".join(w.name for w in workers), f"cuda:{','.join(gpus)}" if gpus else "cpu", env)


def read_log_tail(path: str, offset: int = 0, max_chars: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            f.seek(max(offset, end - max_chars))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def failure_reason(log_tail: str, returncode: int | None) -> str:
    """The last exception or error line of the log, else the exit status."""
    lines = [ln.strip() for ln in log_tail.splitlines() if ln.strip()]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "error")) or "error:" in line:
            return line[:300]
    if returncode is not None and returncode < 0:
        name = signal.Signals(-returncode).name
        return f"killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    return f"exit code {returncode}" + (f": {lines[-1][:200]}" if lines else "")


def classify(returncode: int | None, summary: dict | None, log_tail: str, kill_reason: str,
             timeout_s: float | None) -> tuple[str, str]:
    """(status, reason) of a finished trial from its exit code, summary.json and log."""
    if kill_reason == "timeout":
        return "timeout", f"timed out after {timeout_s:.0f}s; process group killed"
    if kill_reason == "interrupted":
        return "interrupted", "stopped by the supervisor"
    status = (summary or {}).get("status")
    if returncode == 0 and status == "done":
        return "done", ""
    if returncode == 3 or status == "diverged":
        return "diverged", "diverged" + (f" (loss {summary.get('val_loss')})" if summary else "")
    if returncode == 130 or status == "interrupted":
        return "interrupted", "trainer interrupted by a signal"
    if returncode == 0:
        return "failed", "exited 0 without a done summary.json"
    if status == "failed" and summary.get("error"):
        return "failed", str(summary["error"])[:300]   # the trainer recorded its own exception
    return "failed", failure_reason(log_tail, returncode)


class WorkerPool:
    def __init__(self, workers: list[Worker], timeout_s: float | None = None, grace_s: float = 5.0,
                 command: list[str] | None = None, cwd: str | None = None, preload: bool | None = None,
                 devices_per_trial: int = 1, env: dict | None = None):
        if not workers:
            raise ValueError("a worker pool needs at least one worker")
        gpus = [w.device for w in workers if w.device != "cpu"]
        if devices_per_trial > 1 and len(set(gpus)) < len(gpus):
            raise ValueError(f"{devices_per_trial} GPUs per trial needs one worker per GPU, not {len(workers)} "
                             f"workers on {len(set(gpus))} GPUs")
        self.workers = list(workers)
        self.devices_per_trial = devices_per_trial
        self.env = dict(env or {})   # for every trial and the preloader, e.g. PYTHONPATH (agent/code.py)
        self.timeout_s = timeout_s
        self.grace_s = grace_s
        self.command = list(command or TRAIN_COMMAND)
        self.cwd = cwd
        # `foundry train` trials fork from the pool's preloader (preloader.py), which has imported torch
        self.preload = (self.command == TRAIN_COMMAND and sys.platform == "linux") if preload is None else preload
        self.preloader: Preloader | None = None
        self.queue: list[TrialSpec] = []
        self.active: dict[str, _Running] = {}   # trial id -> running trial

    # ---- the non-blocking interface
    def size(self, spec: TrialSpec) -> int:
        """Workers (devices, processes) the trial takes."""
        return spec.nproc or self.devices_per_trial

    def submit(self, spec: TrialSpec) -> None:
        if self.size(spec) > len(self.workers):
            raise ValueError(f"trial {spec.trial_id} needs {self.size(spec)} workers; the pool has {len(self.workers)}")
        self.queue.append(spec)

    def free_slots(self) -> int:
        """How many more trials of the default size could start now (queued ones count as started)."""
        used = sum(len(r.workers) for r in self.active.values()) + sum(self.size(s) for s in self.queue)
        return max(0, (len(self.workers) - used) // self.devices_per_trial)

    def busy(self) -> bool:
        return bool(self.queue or self.active)

    def running(self) -> list[tuple[TrialSpec, Worker, float]]:
        return [(r.spec, r.worker, r.started_at) for r in self.active.values()]

    def poll(self) -> list[Event]:
        events = self._reap()
        if self.queue:
            self.warm()
        while self.queue:
            taken = {w.name for r in self.active.values() for w in r.workers}
            free = [w for w in self.workers if w.name not in taken]
            if len(free) < self.size(self.queue[0]):
                break   # first in, first out: a trial that needs more workers is not overtaken
            spec = self.queue.pop(0)
            events.append(self._start(spec, free[:self.size(spec)]))
        return events

    def stop(self, wait_s: float | None = None) -> list[Event]:
        """Kill every running trial's process group (queued ones are dropped); wait for them."""
        self.queue.clear()
        for run in self.active.values():
            self._signal(run, signal.SIGTERM)
            run.kill_reason, run.kill_at = "interrupted", time.time() + (self.grace_s if wait_s is None else wait_s)
        events = []
        while self.active:
            events += self._reap()
            time.sleep(0.05)
        return events

    def warm(self) -> None:
        """Start the preloader now (it imports torch in the background); else at the first trial."""
        if self.preload and self.preloader is None:
            self.preloader = Preloader({**os.environ, **self.env}, self.cwd)

    def recover(self, running: list[tuple[TrialSpec, int | None]]) -> set:
        """After a crash of the process that ran them: local trials cannot be re-attached; kill any
        still alive (the pid is still that trial's) so that none writes while it is queued again."""
        for spec, pid in running:
            kill_orphan(pid, spec.out_dir)
        return set()

    def close(self) -> None:
        """Stop trials and the preloader (it also dies with this process)."""
        self.stop()
        if self.preloader is not None:
            self.preloader.close()
        self.preloader = None

    # ---- the blocking interface
    def run(self, specs, on_event=None, poll_s: float = 0.2) -> list[TrialResult]:
        for spec in specs:
            self.submit(spec)
        results = {}
        try:
            while self.busy():
                for event in self.poll():
                    if on_event:
                        on_event(event)
                    if event.result:
                        results[event.spec.trial_id] = event.result
                time.sleep(poll_s)
        finally:
            for event in self.stop():
                results[event.spec.trial_id] = event.result
        return [results[s.trial_id] for s in specs if s.trial_id in results]

    # ---- internals
    def _start(self, spec: TrialSpec, workers: list[Worker]) -> Event:
        worker = combine_workers(workers)
        os.makedirs(spec.out_dir, exist_ok=True)
        summary = os.path.join(spec.out_dir, "summary.json")
        if os.path.exists(summary):
            os.unlink(summary)  # a stale summary from an earlier attempt must not be read as this one's
        argv = [*self.command, spec.config_path, *spec.overrides, "--out", spec.out_dir]
        if spec.resume:
            argv.append("--resume")
        if len(workers) > 1:
            argv += ["--nproc", str(len(workers))]
        env = {**os.environ, **self.env, **worker.env, "PYTHONUNBUFFERED": "1"}
        log_path = os.path.join(spec.out_dir, LOG_NAME)
        with open(log_path, "ab") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {worker.name}: {' '.join(argv)}\n".encode())
            log.flush()
            offset = log.tell()
        proc = self.preloader and self.preloader.spawn(argv[len(self.command) - 1:], self.cwd or os.getcwd(),
                                                       log_path, {**self.env, **worker.env, "PYTHONUNBUFFERED": "1"})
        if proc is None:
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=env, cwd=self.cwd, start_new_session=True,
                                        preexec_fn=die_with_parent if sys.platform == "linux" else None)
        timeout, now = spec.timeout_s if spec.timeout_s is not None else self.timeout_s, time.time()
        self.active[spec.trial_id] = _Running(spec, worker, proc, offset, now, now + timeout if timeout else None,
                                              workers=workers)
        return Event("started", spec, worker, proc.pid)

    def _signal(self, run: _Running, sig) -> None:
        try:
            os.killpg(run.proc.pid, sig)  # the trial is the leader of its own process group
        except (ProcessLookupError, PermissionError):
            pass

    def _reap(self) -> list[Event]:
        events, now = [], time.time()
        for name, run in list(self.active.items()):
            returncode = run.proc.poll()
            if returncode is None:
                if run.kill_reason and now >= run.kill_at:
                    self._signal(run, signal.SIGKILL)
                elif not run.kill_reason and run.deadline and now >= run.deadline:
                    self._signal(run, signal.SIGTERM)
                    run.kill_reason, run.kill_at = "timeout", now + self.grace_s
                continue
            self._signal(run, signal.SIGKILL)  # leftovers of the group (children of the trainer)
            del self.active[name]
            events.append(Event("finished", run.spec, run.worker, run.proc.pid, self._result(run, returncode)))
        return events

    def _result(self, run: _Running, returncode: int) -> TrialResult:
        summary = read_summary(run.spec.out_dir)
        tail = read_log_tail(os.path.join(run.spec.out_dir, LOG_NAME), run.log_offset)
        timeout = run.deadline - run.started_at if run.deadline else None
        status, reason = classify(returncode, summary, tail, run.kill_reason, timeout)
        return TrialResult(run.spec.trial_id, status, returncode, summary, reason, tail,
                           run.worker.name, run.worker.device, run.started_at, time.time())

