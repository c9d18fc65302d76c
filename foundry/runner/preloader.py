"""The pool's side of the preloader: start one per worker, fork trials through it, kill orphans.

    preloader = Preloader(env, cwd)          # starts `python forkserver.py`
    proc = preloader.spawn(["train", "cfg.yaml", "--out", "runs/x"], cwd, "runs/x/train.log",
                           {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""})   # the worker's env
    proc.poll()                              # None while it runs, else its exit code
    kill_orphan(pid, "runs/x")               # after a crash of the supervisor

The fork server (forkserver.py) imports torch once and forks one fresh process per trial; the
protocol between the two is described there. Preloaders die with the pool's process (Linux
PR_SET_PDEATHSIG), and so do their trials. One preloader serves a whole pool: a trial's worker
settings (CUDA_VISIBLE_DEVICES, thread counts) are applied in the forked child, before it imports
foundry, which is possible because the fork server never initialises CUDA or a thread pool.
"""
import ctypes
import json
import os
import select
import signal
import subprocess
import sys

FORK_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "forkserver.py")


class PreloadedProcess:
    """The part of subprocess.Popen the pool uses (pid, poll) for a trial forked by a preloader."""

    def __init__(self, pid: int, preloader: "Preloader"):
        self.pid, self.preloader = pid, preloader

    def poll(self):
        return self.preloader.returncode(self.pid)


class Preloader:
    """The pool's handle on its preloader process (one spawn at a time, many trials running)."""

    def __init__(self, env: dict, cwd: str | None = None):
        self.proc = subprocess.Popen([sys.executable, FORK_SERVER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, cwd=cwd,
                                     start_new_session=True, preexec_fn=die_with_parent)
        self.exited: dict[int, int] = {}
        self.started: list[int] = []
        self.pending = b""   # raw bytes read so far: no hidden buffer between select() and reads

    def spawn(self, argv: list, cwd: str, log: str, env: dict | None = None) -> PreloadedProcess | None:
        """Fork a trial with `env` added to its environment; None if the preloader is dead (the pool
        then starts a plain process)."""
        request = {"argv": argv, "cwd": cwd, "log": log, "env": env or {}}
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            return None
        while not self.started:   # blocks only while the preloader still imports torch the first time
            if not self._read(block=True):
                return None
        return PreloadedProcess(self.started.pop(0), self)

    def _read(self, block: bool) -> bool:
        """Take in whatever messages arrived; False once the preloader is gone."""
        fd = self.proc.stdout.fileno()
        if not block and not select.select([fd], [], [], 0)[0]:
            return True
        chunk = os.read(fd, 65536)
        self.pending += chunk
        while b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            message = json.loads(line)
            if "exited" in message:
                self.exited[message["exited"]] = message["returncode"]
            else:
                self.started.append(message["started"])
        return bool(chunk)

    def returncode(self, pid: int):
        alive = True
        while pid not in self.exited and alive and select.select([self.proc.stdout.fileno()], [], [], 0)[0]:
            alive = self._read(block=True)
        if pid in self.exited:
            return self.exited[pid]
        return -signal.SIGKILL if not alive or self.proc.poll() is not None else None  # died with its preloader

    def close(self) -> None:
        try:
            self.proc.stdin.close()   # end of input: the preloader kills its trials and exits
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()


def die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except Exception:
        pass


def kill_orphan(pid: int | None, marker: str) -> bool:
    """Kill the process group of a trial left by a crashed parent, if `pid` is still that trial
    (its command line contains `marker`, e.g. the run folder) and not a recycled pid."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read()
        log = os.readlink(f"/proc/{pid}/fd/1") if os.path.exists(f"/proc/{pid}/fd/1") else ""
        if not pid or (marker.encode() not in command and marker not in log):  # forked trials log there
            return False
        os.killpg(pid, signal.SIGKILL)
        return True
    except OSError:   # gone already, or not ours to kill
        return False
