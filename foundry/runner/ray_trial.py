"""One trial on a Ray node: the actor that ray_pool.RayPool starts per trial (never used by hand).

    runner = TrialRunner()            # as a detached Ray actor named by the trial id
    info = runner.start(request)      # {"pid", "node", "gpus", "shared", "started_at"}: the trainer started
    runner.started()                  # the same, or None (a restarted driver asks)
    outcome = runner.wait()           # {"returncode", "summary", "log_tail", "kill_reason"[, "files"]}
    runner.stop("timeout", grace_s)   # SIGTERM its process group, SIGKILL after grace_s

The trainer is the pool's command (`python -m foundry.training.cli train CONFIG ... --out DIR`) as
a subprocess in its own process group that dies with the actor (PR_SET_PDEATHSIG), run from the
code the pool shipped with the request: the campaign's working tree, unpacked once per version
into a folder of the node's temp dir, and first on the trainer's import path. When the node sees
the run folder at the same path (the request's token file there reads back: shared storage, or
the supervisor's own machine) the trainer writes into it; else into a scratch folder, whose
contents come back in the outcome as a tar archive, and a resumed trial's files go out the same
way. start() is idempotent: a trial submitted again while its actor lives is not started twice.
"""
from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

from foundry.io import read_summary
from foundry.runner.pool import LOG_NAME, read_log_tail
from foundry.runner.preloader import die_with_parent

TOKEN_NAME = ".foundry-ray-token"   # written by the pool into the run folder; read back = shared storage
CONFIG_NAME = "trial-config.yaml"   # the trial's config, in a scratch run folder
SCRATCH = os.path.join(tempfile.gettempdir(), "foundry-ray")


def pack(folder: str, skip=()) -> bytes:
    """A folder as gzip'd tar bytes (paths relative to it)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in sorted(os.listdir(folder)):
            if name not in skip:
                tar.add(os.path.join(folder, name), arcname=name)
    return buffer.getvalue()


def unpack(data: bytes, folder: str) -> None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(folder, filter="data")   # no absolute paths, links out or devices


def shared_storage(out_dir: str, token: str) -> bool:
    try:
        with open(os.path.join(out_dir, TOKEN_NAME), encoding="utf-8") as f:
            return f.read().strip() == token
    except OSError:
        return False


def code_folder(digest: str, archive: list) -> str:
    """The shipped code of this version, unpacked on this node once (an atomic rename publishes it)."""
    final = os.path.join(SCRATCH, "code", digest)
    if not os.path.isdir(final):
        import ray
        tmp = f"{final}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        unpack(ray.get(archive[0]), tmp)
        try:
            os.rename(tmp, final)
        except OSError:   # another actor on this node published it first
            shutil.rmtree(tmp, ignore_errors=True)
    return final


class TrialRunner:
    def __init__(self):
        self.lock = threading.Lock()
        self.proc, self.info, self.key, self.kill_reason = None, None, None, ""

    def start(self, request: dict) -> dict:
        with self.lock:
            key = (request["argv"], request["out_dir"])
            if self.proc is None or (self.proc.poll() is not None and key != self.key):
                self._launch(request)
                self.key = key
            return self.info

    def _launch(self, r: dict) -> None:
        import ray
        self.shared = shared_storage(r["out_dir"], r["token"])
        code = code_folder(r["code_digest"], r["code"])
        if self.shared:
            self.run_dir, config = r["out_dir"], r["config_path"]
        else:
            self.run_dir = os.path.join(SCRATCH, "runs", r["namespace"], r["trial_id"])
            shutil.rmtree(self.run_dir, ignore_errors=True)
            os.makedirs(self.run_dir)
            if r["files"]:
                unpack(ray.get(r["files"][0]), self.run_dir)
            config = os.path.join(self.run_dir, CONFIG_NAME)
            with open(config, "w", encoding="utf-8") as f:
                f.write(r["config_text"])
        argv = [sys.executable, *r["argv"][0], config, *r["argv"][1], "--out", self.run_dir, *r["argv"][2]]
        env = {**os.environ, **r["env"], "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join([code, *filter(None, [env.get("PYTHONPATH")])])
        self.log_path = os.path.join(self.run_dir, LOG_NAME)
        with open(self.log_path, "ab") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} ray {ray.util.get_node_ip_address()} "
                      f"pid {os.getpid()}: {' '.join(argv)}\n".encode())
            log.flush()
            self.offset = log.tell()
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, cwd=code, start_new_session=True, preexec_fn=die_with_parent)
        self.kill_reason = ""
        self.info = {"pid": self.proc.pid, "node": ray.util.get_node_ip_address(), "shared": self.shared,
                     "started_at": time.time(),
                     "gpus": os.environ.get("CUDA_VISIBLE_DEVICES", "") if r["gpus"] else ""}

    def started(self) -> dict | None:
        """What start() returned, or None when no trial was started here."""
        return self.info

    def wait(self) -> dict:
        returncode = self.proc.wait()
        outcome = {"returncode": returncode, "kill_reason": self.kill_reason,
                   "summary": read_summary(self.run_dir), "log_tail": read_log_tail(self.log_path, self.offset)}
        if not self.shared:
            outcome["files"] = pack(self.run_dir, skip=(CONFIG_NAME,))
        return outcome

    def stop(self, reason: str, grace_s: float) -> None:
        self.kill_reason = reason
        self._signal(signal.SIGTERM)
        threading.Timer(grace_s, self._signal, (signal.SIGKILL,)).start()

    def _signal(self, sig) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except OSError:
                pass
