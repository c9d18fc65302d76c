"""Files that must never be half-written, and the JSON files a run leaves behind.

    atomic_write_text("RUN/summary.json", text)   # temp file + fsync + rename: all or nothing
    write_json(path, data)                       # the same, as indented JSON (NaN and inf as null)
    to_json(data)                                # strict JSON text: NaN and inf as null
    check_writable_dir("runs/x", "--out")        # UserError now, not a traceback after the work
    with atomic_folder("OUT") as tmp: ...        # fill tmp; renamed to OUT only if the block succeeds
    read_json(path)                              # dict, or None when missing or unreadable
    read_summary(run_dir)                        # RUN/summary.json, or None
    read_progress(run_dir)                       # RUN/progress.json, or {} before it exists
    run_status(run_dir)                          # running | dead | done | diverged | interrupted | ...

The ground floor with errors.py: imports nothing else from foundry, so every layer may use it.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import socket
import tempfile

from foundry.errors import UserError


def atomic_write_text(path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder, then rename it."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        os.fchmod(fd, _file_mode(path))   # mkstemp makes 0600; a plain open() would follow the umask
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _file_mode(path: str) -> int:
    """The mode `path` has, else what open() would give a new file under the current umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    umask = os.umask(0)   # the only way to read it is to set it: put it back at once
    os.umask(umask)
    return umask


def finite(data):
    """`data` with every NaN or infinite float replaced by None (JSON has no NaN: jq refuses it)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data


def to_json(data, indent: int | None = None, **kwargs) -> str:
    """Strict JSON: NaN and inf become null (json.dumps would write the non-JSON token NaN)."""
    return json.dumps(finite(data), indent=indent, allow_nan=False, **kwargs)
@contextlib.contextmanager
def atomic_folder(path):
    """A temporary folder beside `path`, renamed to `path` when the block ends without an error and
    removed when it raises: readers see the whole folder or none. An existing `path` is refused."""
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path):
        raise UserError(f"{path}: already exists; choose another output folder")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = tempfile.mkdtemp(dir=os.path.dirname(path), prefix=f".tmp-{os.path.basename(path)}-")
    try:
        os.chmod(tmp, 0o777 & ~_umask())   # mkdtemp makes 0700: follow the umask like mkdir
        yield tmp
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path, data, indent: int = 2) -> None:
    atomic_write_text(path, to_json(data, indent=indent) + "\n")


def check_writable_dir(path, what: str = "--out") -> None:
    """UserError unless `path` is a folder this process can create or write into: a folder is made
    and removed in `path` or its nearest existing parent (permission bits do not tell for root, or
    for /proc), and that folder's times are put back, so the check leaves no trace."""
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{what} {path}: exists and is not a folder")
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UserError(f"{what} {path}: {existing} is a file, not a folder")
    times = os.stat(existing)
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".write-test-"))
    except OSError as e:
        raise UserError(f"{what} {path}: cannot write in {existing} ({e.strerror})") from None
    with contextlib.suppress(OSError):
        os.utime(existing, ns=(times.st_atime_ns, times.st_mtime_ns))


def pid_alive(pid) -> bool:
    """Whether a process with this pid exists (one of another user's counts as alive)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_yaml_mapping(path, error=UserError, empty: dict | None = None) -> dict:
    """The mapping at the top of a YAML file (yaml.safe_load). An unreadable file, invalid YAML or
    another top-level type raises `error` with a one-line message naming the file; an empty file
    gives `empty`, or is an error when empty is None."""
    import yaml
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:   # libyaml's safe loader when PyYAML has it: 10x faster
            data = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except OSError as e:
        raise error(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a UTF-8 text file") from None
    except yaml.YAMLError as e:
        raise error(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    if data is None and empty is not None:
        return dict(empty)
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping at the top level")
    return data


def read_json(path, strict: bool = False) -> dict | None:
    """The JSON object in `path`, or None when the file is missing (or, unless `strict`, unreadable).

    strict: a file that exists but is not valid JSON raises UserError naming it (state files
    that must not be silently started afresh)."""
    try:
        with open(os.fspath(path), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        if strict:
            raise UserError(f"{os.fspath(path)}: not readable as JSON ({e})") from None
        return None


def read_summary(run_dir) -> dict | None:
    """A run's summary.json (written once, atomically, at the end of training), or None."""
    return read_json(os.path.join(os.fspath(run_dir), "summary.json"))


def read_progress(run_dir) -> dict:
    """A run's progress.json (rewritten atomically while it trains), or {} before it exists."""
    return read_json(os.path.join(os.fspath(run_dir), "progress.json")) or {}


def run_status(run_dir) -> str:
    """What a run folder's trainer is doing: its progress.json status (done, diverged, interrupted,
    running), except that a `running` run whose process is gone is `failed` when it recorded a
    crash in summary.json afterwards, else `dead` (killed with -9, out of memory, the machine
    rebooted); `none` before it wrote anything."""
    progress = read_progress(run_dir)
    status = progress.get("status", "none")
    if status == "running" and progress.get("host") == socket.gethostname() and not _trainer_alive(progress.get("pid")):
        summary_path = os.path.join(os.fspath(run_dir), "summary.json")
        crashed = os.path.exists(summary_path) and os.path.getmtime(summary_path) >= progress.get("updated_at", 0)
        return "failed" if crashed and (read_summary(run_dir) or {}).get("status") == "failed" else "dead"
    return status


def _trainer_alive(pid) -> bool:
    """The pid lives and (where /proc tells) is a foundry process, not a stranger that reused it."""
    if not pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"foundry" in f.read()
    except OSError:
        return True
