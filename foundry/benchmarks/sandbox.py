"""Run untrusted Python (HumanEval completions and their tests) one process per program, contained.

    limits = SandboxLimits(timeout=5.0)
    record = run_program("def f(): ...\\nassert f() == 1\\n", limits)   # {"passed", "status", ...}
    records = run_programs(programs, limits, workers=2)                # same order as programs

Each program gets: a fresh temporary folder as its working directory (removed afterwards), a clean
environment (PATH, HOME and TMPDIR pointing at the folder), `python -I -S -B` (no user site, no
PYTHON* variables), stdin closed and stdout/stderr captured to files (bounded by the file-size
limit), its own session and process group (killed as a whole afterwards), a wall-clock timeout,
and inside the child (sandbox_child.py): the drop to `nobody` when run as root, rlimits on CPU
time, memory, file size and process count, and a guard against writes outside the folder.
Status: passed | failed (raised or exited non-zero) | timeout | killed (by a signal, e.g. the CPU
or file-size limit) | error (the sandbox itself could not be set up).
"""
from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_child.py")
NOBODY = 65534
SETUP_FAILED = 3


@dataclass
class SandboxLimits:
    timeout: float = 5.0          # wall-clock seconds
    memory_mb: int = 1024         # address space
    file_size_mb: int = 16        # largest file the program may write
    open_files: int = 64
    cpu_seconds: int = 0          # 0 = the timeout rounded up, plus one

    def cpu(self) -> int:
        return self.cpu_seconds or math.ceil(self.timeout) + 1


def _tail(handle, limit: int = 2000) -> str:
    handle.seek(0)
    text = handle.read(1 << 16).decode("utf-8", errors="replace").strip()
    return text[-limit:]


def run_program(program: str, limits: SandboxLimits | None = None) -> dict:
    limits = limits or SandboxLimits()
    folder = tempfile.mkdtemp(prefix="foundry-sandbox-")
    start = time.perf_counter()
    try:
        with open(os.path.join(folder, "sample.py"), "w", encoding="utf-8") as f:
            f.write(program)
        if os.geteuid() == 0:  # the child runs as nobody: the folder must be its own, and only it
            os.chown(folder, NOBODY, NOBODY)
        os.chmod(folder, 0o700)
        env = {"PATH": "/usr/bin:/bin", "HOME": folder, "TMPDIR": folder, "LANG": "C.UTF-8"}
        cmd = [sys.executable, "-I", "-S", "-B", CHILD, str(limits.cpu()), str(limits.memory_mb << 20),
               str(limits.file_size_mb << 20), str(limits.open_files)]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(cmd, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=err, start_new_session=True, close_fds=True)
            timed_out = False
            try:
                proc.wait(timeout=limits.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(proc.pid)
                proc.wait()
            code = proc.returncode
            stdout, stderr = _tail(out), _tail(err)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if timed_out:
        status = "timeout"
    elif code == 0:
        status = "passed"
    elif code == SETUP_FAILED:
        status = "error"
    elif code < 0:
        status = "killed"
    else:
        status = "failed"
    return {"passed": status == "passed", "status": status, "returncode": code,
            "seconds": round(time.perf_counter() - start, 4), "stdout": stdout[-500:],
            "error": stderr.splitlines()[-1] if stderr else ""}


def _kill_group(pgid: int) -> None:
    """SIGKILL every process left in the child's group (it was started as a new session)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_programs(programs: list[str], limits: SandboxLimits | None = None, workers: int = 2) -> list[dict]:
    """run_program over many programs, `workers` sandboxes at once; results in input order."""
    if workers <= 1:
        return [run_program(p, limits) for p in programs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: run_program(p, limits), programs))
