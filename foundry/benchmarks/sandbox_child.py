"""The child side of the sandbox: limits itself, installs a guard, then runs sample.py from its cwd.

Started only by foundry.benchmarks.sandbox (never imported; standard library only):
    python -I -S -B sandbox_child.py CPU_SECONDS MEMORY_BYTES FILE_BYTES OPEN_FILES
with cwd = a fresh temporary folder holding sample.py. Exit code 0 means the sample ran to the end;
1 means it raised (an AssertionError from the tests, SystemExit from exit(), a blocked call, ...).

In order: (1) when started as root, drop to the `nobody` user, so the kernel itself refuses writes
outside the temporary folder (which the parent chowned to nobody) and signals to other users'
processes, the evaluator included; (2) resource limits with hard = soft, so the sample cannot raise them: CPU
time, address space, file size, no new processes or threads, no core files; (3) a guard in the
interpreter that makes destructive os/shutil calls and open-for-write outside the folder raise
PermissionError, disables fork/exec/kill/os._exit, and blocks ctypes/subprocess/multiprocessing.
The guard stops accidents; (1) and (2) are what the kernel enforces. This contains what a model
writes by mistake; it is not a boundary for code written to attack the evaluator (use a container).
"""
import _io
import builtins
import io
import os
import posix
import resource
import runpy
import shutil
import signal
import stat
import sys

NOBODY = 65534
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# os function -> positions of the path arguments it may modify
PATH_CALLS = {"remove": (0,), "unlink": (0,), "rmdir": (0,), "removedirs": (0,), "rename": (0, 1),
              "renames": (0, 1), "replace": (0, 1), "truncate": (0,), "chmod": (0,), "lchmod": (0,),
              "chown": (0,), "lchown": (0,), "link": (1,), "symlink": (1,), "mkdir": (0,),
              "makedirs": (0,), "mkfifo": (0,), "mknod": (0,), "utime": (0,)}
PATH_KEYWORDS = ("path", "src", "dst", "name")
DISABLED = ("kill", "killpg", "fork", "forkpty", "system", "popen", "execv", "execve", "execl", "execle",
            "execlp", "execlpe", "execvp", "execvpe", "spawnv", "spawnve", "spawnl", "spawnle", "spawnvp",
            "spawnvpe", "spawnlp", "spawnlpe", "posix_spawn", "posix_spawnp", "_exit", "chroot",
            "setuid", "setgid", "seteuid", "setegid", "setreuid", "setregid", "pidfd_open")
BLOCKED_MODULES = ("ctypes", "_ctypes", "subprocess", "_posixsubprocess", "multiprocessing",
                   "_multiprocessing", "pty", "resource")


def readable_by_everyone(path: str) -> bool:
    """Whether another user could still import from `path` (every parent folder searchable)."""
    path = os.path.realpath(path)
    if not os.stat(path).st_mode & stat.S_IROTH:
        return False
    while path != os.path.dirname(path):
        path = os.path.dirname(path)
        if not os.stat(path).st_mode & stat.S_IXOTH:
            return False
    return True


def drop_privileges() -> bool:
    """As root, become nobody; skipped when nobody could not read this interpreter's library."""
    if os.geteuid() == 0 and all(readable_by_everyone(p) for p in sys.path if os.path.exists(p)):
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        return True
    return False


def set_limits(cpu_seconds: int, memory_bytes: int, file_bytes: int, open_files: int) -> None:
    for limit, value in ((resource.RLIMIT_CPU, cpu_seconds), (resource.RLIMIT_AS, memory_bytes),
                         (resource.RLIMIT_FSIZE, file_bytes), (resource.RLIMIT_NOFILE, open_files),
                         (resource.RLIMIT_NPROC, 0), (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(limit, (value, value))


def install_guard(folder: str) -> None:
    root = os.path.realpath(folder)
    realpath, readlink, getcwd, join, fsdecode = (os.path.realpath, os.readlink, os.getcwd,
                                                  os.path.join, os.fsdecode)

    def inside(path, dir_fd=None) -> bool:
        if isinstance(path, int):
            return True  # an already-open file descriptor
        base = readlink(f"/proc/self/fd/{dir_fd}") if dir_fd is not None else getcwd()
        full = realpath(join(base, fsdecode(path)))
        return full == root or full.startswith(root + os.sep)

    def refuse(what, path=None):
        raise PermissionError(f"sandbox: {what}" + (f" outside the working folder: {path!r}" if path else " is disabled"))

    def path_checked(name, fn, positions):
        def guarded(*args, **kwargs):
            for i in positions:
                if i < len(args):
                    fd = kwargs.get("dst_dir_fd" if i == 1 else "src_dir_fd", kwargs.get("dir_fd"))
                    if not inside(args[i], fd):
                        refuse(f"os.{name}", args[i])
            for key in PATH_KEYWORDS:
                if key in kwargs and not inside(kwargs[key], kwargs.get("dir_fd")):
                    refuse(f"os.{name}", kwargs[key])
            return fn(*args, **kwargs)
        return guarded

    def disabled(name):
        def guarded(*args, **kwargs):
            refuse(f"os.{name}")
        return guarded

    for module in (os, posix):  # posix: the C module behind os, reachable by `import posix`
        for name, positions in PATH_CALLS.items():
            if hasattr(module, name):
                setattr(module, name, path_checked(name, getattr(module, name), positions))
        for name in DISABLED:
            if hasattr(module, name):
                setattr(module, name, disabled(name))
    for name in ("pthread_kill", "pidfd_send_signal"):
        if hasattr(signal, name):
            setattr(signal, name, disabled(name))

    real_os_open, real_open, real_file_io = os.open, builtins.open, _io.FileIO

    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & WRITE_FLAGS and not inside(path, kwargs.get("dir_fd")):
            refuse("os.open for writing", path)
        return real_os_open(path, flags, *args, **kwargs)

    def guarded_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and not inside(file):
            refuse("open for writing", file)
        return real_open(file, mode, *args, **kwargs)

    class GuardedFileIO(real_file_io):
        def __init__(self, file, mode="r", *args, **kwargs):
            if any(c in mode for c in "wax+") and not inside(file):
                refuse("FileIO for writing", file)
            super().__init__(file, mode, *args, **kwargs)

    def guarded_tree(name, fn):
        def guarded(path, *args, **kwargs):
            if not inside(path):
                refuse(f"shutil.{name}", path)
            return fn(path, *args, **kwargs)
        return guarded

    os.open = posix.open = guarded_os_open
    builtins.open = io.open = _io.open = guarded_open
    io.FileIO = _io.FileIO = GuardedFileIO
    shutil.rmtree = guarded_tree("rmtree", shutil.rmtree)
    shutil.move = guarded_tree("move", shutil.move)
    for name in BLOCKED_MODULES:
        sys.modules[name] = None  # `import name` now raises ImportError


def main() -> None:
    exit_now = os._exit  # kept before the guard replaces it: the only way to report success
    cpu, memory, file_bytes, open_files = (int(x) for x in sys.argv[1:5])
    folder = os.getcwd()
    try:
        drop_privileges()
        set_limits(cpu, memory, file_bytes, open_files)
        install_guard(folder)
    except Exception as e:  # the sandbox could not be set up: never run the sample unprotected
        print(f"sandbox setup failed: {e!r}", file=sys.stderr)
        exit_now(3)
    code = 0
    try:
        runpy.run_path(os.path.join(folder, "sample.py"), run_name="sandbox_sample")
    except BaseException as e:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are failures too
        print(f"{type(e).__name__}: {e}"[:2000], file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        exit_now(code)


if __name__ == "__main__":
    main()
