"""Trial processes: a per-worker fork server that imports torch once, then forks one fresh
process per trial. Started by runner/preloader.py (never by hand) as `python .../forkserver.py`,
one per worker pool; each trial gets its worker's environment (CUDA_VISIBLE_DEVICES,
OMP_NUM_THREADS) in the forked child, before anything initialises CUDA or a thread pool.

It imports the heavy third-party libraries (torch, numpy, tensorboard, safetensors) but nothing
of foundry, and it never touches CUDA, so each forked trial imports foundry afresh: code an agent
edited is picked up by the next trial, exactly as with a new interpreter, without paying the
seconds that `import torch` costs per trial. A trial runs the trainer's own entry point,
foundry.training.cli.main (`train` or `train-rung`), in its own session (process group), with
stdout/stderr appended to its log, and dies with the fork server, which dies with the pool.

Protocol, one JSON object per line. stdin: {"argv": [...], "cwd": DIR, "log": FILE, "env": {...}}.
stdout: {"started": PID} right after the fork, then {"exited": PID, "returncode": N}
(negative N: killed by signal -N). End of stdin: the server kills its trials and exits.
"""
import ctypes
import json
import os
import select
import signal
import sys
import traceback

# This file runs as a script: its folder must not shadow top-level modules.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)


def die_with_parent() -> None:
    """As preloader.die_with_parent (copied: this script imports nothing of foundry)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except Exception:
        pass


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
    """In the forked child: become a session leader, log to the file, run the trainer's ARGV."""
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
    os.environ.update(request.get("env", {}))
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:   # OpenMP read the variable when torch loaded: set it now
        import torch
        torch.set_num_threads(int(threads))
    sys.argv = ["foundry", *request["argv"]]
    code = 1
    try:
        from foundry.training.cli import main
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
