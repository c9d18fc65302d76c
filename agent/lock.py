"""One supervisor per campaign: an exclusive lock file that holds the owner's pid.

    with CampaignLock("experiments/tiny/supervisor.lock"):
        ...   # raises UserError naming the live owner's pid if another supervisor runs

The lock is an fcntl advisory lock on the file, so the kernel releases it the moment its
owner dies (even by kill -9): a lock file left by a dead process is stale and simply taken
over; the pid inside is for people and error messages. A clean release removes the file
(while still holding the lock; an acquirer checks that the file it locked is still the one
at the path), so a campaign that is not running has no lock file.
"""
from __future__ import annotations

import fcntl
import os

from foundry.errors import UserError
from foundry.io import pid_alive  # noqa: F401 (re-exported: status and tests read it here)


def read_pid(path: str) -> int | None:
    try:
        with open(path, encoding="utf-8") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class CampaignLock:
    def __init__(self, path: str):
        self.path = path
        self.fd: int | None = None
        self.took_over_pid: int | None = None   # the dead owner of a stale lock, if any

    def acquire(self) -> "CampaignLock":
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                owner = read_pid(self.path)
                raise UserError(f"{self.path}: campaign is locked by a running supervisor (pid {owner}); "
                                "stop it first or pick another --campaign") from None
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)   # its owner removed the file as we locked it: lock the new one
        previous = read_pid(self.path)
        if previous and previous != os.getpid():
            self.took_over_pid = previous   # its flock is gone, so it died or crashed
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)   # still locked, so no one else holds this file; the flock goes with the close
        except FileNotFoundError:
            pass
        finally:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
