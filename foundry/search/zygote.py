"""Trial processes: a per-worker preloader that imports torch once, then forks one fresh
process per trial; its client (Preloader) used by foundry.search.pool; kill_orphan.

Started by foundry.search.pool (never by hand) as `python .../zygote.py` with the worker's
environment (CUDA_VISIBLE_DEVICES, OMP_NUM_THREADS). It imports the heavy third-party
libraries (torch, numpy, tensorboard, safetensors) but nothing of foundry, and it never
touches CUDA, so each forked trial imports foundry afresh: code an agent edited is picked up
by the next trial, exactly as with a new interpreter, without paying the seconds that
`import torch` costs per trial. Each trial is its own process in its own session (process
group), with stdout/stderr appended to its log, and dies with the preloader, which dies with
the pool's process (Linux PR_SET_PDEATHSIG).

Protocol, one JSON object per line. stdin: {"argv": [...], "cwd": DIR, "log": FILE}.
stdout: {"started": PID} right after the fork, then {"exited": PID, "returncode": N}
(negative N: killed by signal -N). End of stdin: the preloader kills its trials and exits.
"""
import ctypes
import json
import os
import select
import signal
import sys
import traceback

# This file runs as a script: its folder must not shadow top-level modules (e.g. `stats`).
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)


class PreloadedProcess:
    """The part of subprocess.Popen the pool uses (pid, poll) for a trial forked by a preloader."""

    def __init__(self, pid: int, preloader: "Preloader"):
        self.pid, self.preloader = pid, preloader

    def poll(self):
        return self.preloader.returncode(self.pid)


class Preloader:
    """The pool's handle on one preloader process (one per worker, one trial at a time)."""

    def __init__(self, env: dict, cwd: str | None = None):
        import subprocess
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, cwd=cwd,
                                     start_new_session=True, preexec_fn=die_with_parent)
        self.exited: dict[int, int] = {}
        self.started: list[int] = []
        self.pending = b""   # raw bytes read so far: no hidden buffer between select() and reads

    def spawn(self, argv: list, cwd: str, log: str) -> PreloadedProcess | None:
        """Fork a trial; None if the preloader is dead (the pool then starts a plain process)."""
        try:
            self.proc.stdin.write((json.dumps({"argv": argv, "cwd": cwd, "log": log}) + "\n").encode())
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


def preload() -> None:
    """Import what every trial needs and that does not change while the loop runs."""
    import numpy  # noqa: F401
    import torch  # noqa: F401
    import yaml  # noqa: F401
    for name in ("torch._dynamo", "torch.utils.tensorboard", "safetensors.torch"):
        try:
            __import__(name)
        except Exception:   # optional speed-ups only; the trial imports what it needs itself
            pass


def run_trial(request: dict) -> None:
    """In the forked child: become a session leader, log to the file, run `foundry ARGV`."""
    os.setsid()
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    os.chdir(request["cwd"])
    sys.argv = ["foundry", *request["argv"]]
    code = 1
    try:
        from foundry.cli import main
        code = main(request["argv"])
    except SystemExit as e:   # argparse and friends
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code or 0)


def send(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    die_with_parent()
    preload()
    children: set[int] = set()
    pending = b""   # raw stdin bytes: no Python-level buffer can hide a request from select()
    while True:
        if select.select([0], [], [], 0.05)[0]:
            chunk = os.read(0, 65536)
            if not chunk:   # the pool is gone or closed us
                for pid in children:
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except OSError:
                        pass
                os._exit(0)   # skip interpreter teardown: nothing to flush, and torch's is slow
            pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            pid = os.fork()
            if pid == 0:
                run_trial(json.loads(line))
            children.add(pid)
            send({"started": pid})
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.discard(pid)
                send({"exited": pid, "returncode": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    main()
