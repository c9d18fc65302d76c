"""The worker pool on a Ray cluster: pool.WorkerPool's interface, each trial a Ray actor.

    pool = RayPool("auto", devices_per_trial=1, cpus_per_trial=1, cwd=repo_root, namespace="foundry-x")
    RayPool(..., storage="copy")                # never write on the driver's disk from a node: copy back
    pool.submit(spec); events = pool.poll(); pool.stop(); pool.close()
    kept = pool.recover([(spec, pid), ...])     # after a restart: trials still running on the cluster

Each trial is a detached actor (ray_trial.TrialRunner) named by its trial id in the campaign's
namespace, asking for its resources: num_gpus = devices_per_trial on a cluster with GPUs (Ray sets
CUDA_VISIBLE_DEVICES), else num_cpus = cpus_per_trial per process; with several devices the
trainer runs as that many processes (`--nproc K`, torchrun on the node). Ray places the actors
and queues those that do not fit. The driver (the supervisor or a sweep) stays the only writer of
the ledger and of git; the actors write only trial folders (see ray_trial.py for shared storage
and copying back).

Code: every trial gets the working tree of `cwd` as git sees it (tracked and untracked files,
ignored ones left out, uncommitted edits included), plus the foundry package when the tree does
not hold it, as one archive in Ray's object store, rebuilt only when a file changed: an agent's
edit reaches remote nodes with the next trial. The actor class itself comes from the foundry
package shipped at connection time (runtime_env py_modules).

Faults: an actor lost mid-trial (its node died, its process was killed) is started once more,
resuming from the run folder's checkpoint; a second loss fails the trial. Actors are detached, so
trials outlive a supervisor killed with -9; on restart recover() re-attaches to those still
alive (or finished and not yet collected), and submit() of a trial whose actor lives adopts it.
"""
from __future__ import annotations

import hashlib
import io
import os
import secrets
import subprocess
import tarfile
import time
from dataclasses import dataclass

from foundry.errors import UserError
from foundry.io import read_summary
from foundry.runner.pool import TRAIN_COMMAND, Event, TrialResult, TrialSpec, Worker, classify
from foundry.runner.ray_trial import TOKEN_NAME, TrialRunner, pack, unpack

RAY_MISSING = "the Ray backend needs Ray: pip install -e '.[ray]' (or pip install 'ray>=2.9')"
FOUNDRY_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_CODE_BYTES = 256 * 2**20


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(RAY_MISSING) from None
    return ray


def code_files(root: str | None) -> dict[str, str]:
    """archive name -> file path: the working tree of `root` as git lists it, and foundry/ if absent."""
    files = {}
    if root:
        try:
            listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                    cwd=root, capture_output=True, check=True).stdout.decode().split("\0")
        except (OSError, subprocess.CalledProcessError):
            listed = []   # not a git repository: the foundry package alone
        files = {name: os.path.join(root, name) for name in listed if name and os.path.isfile(os.path.join(root, name))}
    if not any(name.startswith("foundry/") for name in files):
        for folder, dirs, names in os.walk(FOUNDRY_DIR):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in names:
                path = os.path.join(folder, name)
                files["foundry/" + os.path.relpath(path, FOUNDRY_DIR)] = path
    return files


@dataclass
class _Remote:
    spec: TrialSpec
    worker: Worker
    actor: object
    done: object              # ObjectRef of actor.wait()
    started_at: float
    deadline: float | None
    kill_reason: str = ""


class RayPool:
    def __init__(self, address: str = "auto", devices_per_trial: int = 1, cpus_per_trial: int = 1,
                 timeout_s: float | None = None, grace_s: float = 5.0, command: list[str] | None = None,
                 cwd: str | None = None, namespace: str = "foundry", retries: int = 1, storage: str = "auto"):
        self.ray = ray = import_ray()
        self.connected_here = not ray.is_initialized()
        if self.connected_here:
            try:
                ray.init(address=None if address == "local" else address, namespace=namespace,
                         runtime_env={"py_modules": [FOUNDRY_DIR], "excludes": ["__pycache__"]},
                         logging_level="WARNING", log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise UserError(f"--address {address}: cannot reach a Ray cluster ({str(e).splitlines()[0][:200]}); "
                                "start one with `ray start --head` or pass --address HOST:PORT") from None
        self.Runner = ray.remote(TrialRunner)
        resources = ray.cluster_resources()
        self.use_gpus = resources.get("GPU", 0) >= 1
        self.devices_per_trial, self.cpus_per_trial = devices_per_trial, cpus_per_trial
        slots = (resources.get("GPU", 0) // devices_per_trial if self.use_gpus
                 else resources.get("CPU", 0) // (cpus_per_trial * devices_per_trial))
        self.workers = [Worker(f"ray{i}", "cuda" if self.use_gpus else "cpu") for i in range(max(1, int(slots)))]
        self.timeout_s, self.grace_s, self.retries = timeout_s, grace_s, retries
        self.command = list(command or TRAIN_COMMAND)[1:]   # the node's own interpreter runs it
        self.cwd, self.namespace = cwd, namespace
        self.storage = storage   # auto: trials write the run folder where their node sees it; copy: always copy back
        self.queue: list[TrialSpec] = []
        self.starting: dict = {}                 # ObjectRef of actor.start() -> (spec, actor)
        self.active: dict[str, _Remote] = {}     # trial id -> running trial
        self.attempts: dict[str, int] = {}
        self._code = (None, None, None)          # (fingerprint, digest, [ObjectRef])

    # ---- the pool interface
    def size(self, spec: TrialSpec) -> int:
        return spec.nproc or self.devices_per_trial

    def submit(self, spec: TrialSpec) -> None:
        self.queue.append(spec)

    def busy(self) -> bool:
        return bool(self.queue or self.starting or self.active)

    def running(self) -> list[tuple[TrialSpec, Worker, float]]:
        return [(r.spec, r.worker, r.started_at) for r in self.active.values()]

    def free_slots(self) -> int:
        return max(0, len(self.workers) - len(self.queue) - len(self.starting) - len(self.active))

    def warm(self) -> None:
        pass

    def poll(self) -> list[Event]:
        ray, events, now = self.ray, [], time.time()
        while self.queue:   # Ray places each actor where its resources are free and queues the rest
            spec = self.queue.pop(0)
            self.attempts[spec.trial_id] = self.attempts.get(spec.trial_id, 0) + 1
            actor = self.Runner.options(name=spec.trial_id, namespace=self.namespace, get_if_exists=True,
                                        lifetime="detached", max_restarts=0, max_concurrency=4,
                                        num_cpus=self.cpus_per_trial * (1 if self.use_gpus else self.size(spec)),
                                        num_gpus=self.size(spec) if self.use_gpus else 0).remote()
            self.starting[actor.start.remote(self._request(spec))] = (spec, actor)
        for ref in self._ready(list(self.starting)):
            spec, actor = self.starting.pop(ref)
            try:
                info = ray.get(ref)
            except ray.exceptions.RayError as e:
                events += self._lost(spec, actor, e, None)
                continue
            events.append(self._adopt(spec, actor, info, now))
        by_ref = {run.done: run for run in self.active.values()}
        for ref in self._ready(list(by_ref)):
            run = by_ref[ref]
            del self.active[run.spec.trial_id]
            try:
                outcome = ray.get(ref)
            except ray.exceptions.RayError as e:
                events += self._lost(run.spec, run.actor, e, run)
                continue
            events.append(Event("finished", run.spec, run.worker, 0, self._result(run, outcome)))
            ray.kill(run.actor)
        for run in self.active.values():
            if run.deadline and now >= run.deadline and not run.kill_reason:
                run.kill_reason = "timeout"
                run.actor.stop.remote("timeout", self.grace_s)
        return events

    def stop(self, wait_s: float | None = None) -> list[Event]:
        """Stop every running trial (queued and not yet started ones are dropped); wait for them."""
        self.queue.clear()
        for _, actor in self.starting.values():
            self.ray.kill(actor)
        self.starting.clear()
        for run in self.active.values():
            run.kill_reason = "interrupted"
            run.actor.stop.remote("interrupted", self.grace_s if wait_s is None else wait_s)
        events, give_up = [], time.time() + self.grace_s + 60
        while self.active and time.time() < give_up:
            events += [e for e in self.poll() if e.kind == "finished"]
            time.sleep(0.1)
        for run in self.active.values():   # not answering: kill the actor (its trainer dies with it)
            self.ray.kill(run.actor)
            events.append(Event("finished", run.spec, run.worker, 0,
                                self._failed(run.spec, run.worker, run.started_at, "interrupted", "stopped")))
        self.active.clear()
        return events

    def close(self) -> None:
        self.stop()
        if self.connected_here:
            self.ray.shutdown()

    def recover(self, running: list[tuple[TrialSpec, int | None]]) -> set[str]:
        """Re-attach to the actors of trials a previous driver left running; their ids."""
        kept = set()
        for spec, _ in running:
            try:
                actor = self.ray.get_actor(spec.trial_id, namespace=self.namespace)
                info = self.ray.get(actor.started.remote(), timeout=60)
            except (ValueError, self.ray.exceptions.RayError):
                continue   # gone: the caller queues the trial again
            if info is None:   # created, never started: the caller starts it afresh
                self.ray.kill(actor)
                continue
            self.attempts[spec.trial_id] = 1
            self._adopt(spec, actor, info, time.time())
            kept.add(spec.trial_id)
        return kept

    # ---- internals
    def _ready(self, refs: list) -> list:
        return self.ray.wait(refs, num_returns=len(refs), timeout=0)[0] if refs else []

    def _adopt(self, spec, actor, info: dict, now: float) -> Event:
        worker = Worker(f"ray:{info['node']}", f"cuda:{info['gpus']}" if info["gpus"] else "cpu")
        timeout = spec.timeout_s if spec.timeout_s is not None else self.timeout_s
        started = info["started_at"]   # on the node's clock: an adopted trial started before this driver
        self.active[spec.trial_id] = _Remote(spec, worker, actor, actor.wait.remote(), started,
                                             max(now, started) + timeout if timeout else None)
        return Event("started", spec, worker, info["pid"])

    def _request(self, spec: TrialSpec) -> dict:
        os.makedirs(spec.out_dir, exist_ok=True)
        summary = os.path.join(spec.out_dir, "summary.json")
        if os.path.exists(summary):
            os.unlink(summary)   # a stale summary from an earlier attempt must not be read as this one's
        token = secrets.token_hex(8)
        with open(os.path.join(spec.out_dir, TOKEN_NAME), "w", encoding="utf-8") as f:
            f.write(token if self.storage == "auto" else "")   # "copy": no node reads it back
        with open(spec.config_path, encoding="utf-8") as f:
            config_text = f.read()
        resume = spec.resume and os.path.isdir(os.path.join(spec.out_dir, "checkpoint"))
        files = [self.ray.put(pack(spec.out_dir, skip=(TOKEN_NAME,)))] if resume else []   # fetched off shared storage only
        tail = (["--resume"] if resume else []) + (["--nproc", str(self.size(spec))] if self.size(spec) > 1 else [])
        env = {k: v for k, v in os.environ.items() if k.startswith("FOUNDRY_")}
        env.update(OMP_NUM_THREADS=str(self.cpus_per_trial), MKL_NUM_THREADS=str(self.cpus_per_trial))
        if not self.use_gpus:
            env["CUDA_VISIBLE_DEVICES"] = ""
        digest, code = self._code_archive()
        return {"trial_id": spec.trial_id, "namespace": self.namespace, "out_dir": os.path.abspath(spec.out_dir),
                "config_path": os.path.abspath(spec.config_path), "config_text": config_text, "token": token,
                "argv": (self.command, list(spec.overrides), tail), "env": env, "gpus": self.use_gpus,
                "files": files, "code_digest": digest, "code": code}

    def _code_archive(self) -> tuple[str, list]:
        """(digest, [ObjectRef of the archive]) of the code to ship, rebuilt when a file changed."""
        files = code_files(self.cwd)
        stats = sorted((name, os.stat(path).st_size, os.stat(path).st_mtime_ns) for name, path in files.items())
        fingerprint = hashlib.sha256(repr(stats).encode()).hexdigest()
        if fingerprint != self._code[0]:
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                for name in sorted(files):
                    tar.add(files[name], arcname=name)
            data = buffer.getvalue()
            if len(data) > MAX_CODE_BYTES:
                raise UserError(f"{self.cwd}: the working tree packs to {len(data) >> 20} MiB of code to ship; "
                                "git-ignore data and outputs")
            self._code = (fingerprint, hashlib.sha256(data).hexdigest()[:16], [self.ray.put(data)])
        return self._code[1], self._code[2]

    def _lost(self, spec, actor, error, run) -> list[Event]:
        """An actor gone mid-trial: start it once more (from its checkpoint), else fail the trial."""
        ray = self.ray
        lost = isinstance(error, (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                                  ray.exceptions.NodeDiedError, ray.exceptions.ObjectLostError))
        reason = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:240] if str(error).strip() else ''}"
        try:
            ray.kill(actor)
        except Exception:
            pass
        if lost and not (run and run.kill_reason) and self.attempts.get(spec.trial_id, 1) <= self.retries:
            spec.resume = True   # from the checkpoint it left, if any
            self.queue.insert(0, spec)
            return []
        worker = run.worker if run else Worker("ray", "?")
        why = f"lost on the Ray cluster {self.attempts.get(spec.trial_id, 1)} time(s): {reason}" if lost else reason
        return [Event("finished", spec, worker, 0, self._failed(spec, worker, run.started_at if run else time.time(),
                                                                "interrupted" if run and run.kill_reason else "failed",
                                                                why))]

    def _failed(self, spec, worker, started_at, status, reason) -> TrialResult:
        return TrialResult(spec.trial_id, status, None, read_summary(spec.out_dir), reason, "", worker.name,
                           worker.device, started_at, time.time())

    def _result(self, run: _Remote, outcome: dict) -> TrialResult:
        if "files" in outcome:   # the node did not share the run folder: its files come back here
            unpack(outcome["files"], run.spec.out_dir)
        try:
            os.unlink(os.path.join(run.spec.out_dir, TOKEN_NAME))
        except OSError:
            pass
        summary = read_summary(run.spec.out_dir) or outcome["summary"]
        timeout = run.deadline - run.started_at if run.deadline else None
        status, reason = classify(outcome["returncode"], summary, outcome["log_tail"],
                                  outcome["kill_reason"] or run.kill_reason, timeout)
        return TrialResult(run.spec.trial_id, status, outcome["returncode"], summary, reason, outcome["log_tail"],
                           run.worker.name, run.worker.device, run.started_at, time.time())

