"""agent.lock: one supervisor per campaign; a dead owner's lock is taken over."""
import os
import subprocess
import sys

import pytest

from agent.lock import CampaignLock, read_pid
from foundry.errors import UserError

HOLD = ("import sys, time; from agent.lock import CampaignLock; CampaignLock(sys.argv[1]).acquire(); "
        "print('held', flush=True); time.sleep(60)")


def test_live_lock_is_refused_with_its_pid(tmp_path):
    path = str(tmp_path / "supervisor.lock")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, path], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"pid {holder.pid}"):
            CampaignLock(path).acquire()
    finally:
        holder.kill()
        holder.wait()
    # killed with -9: the kernel dropped its lock, so the next supervisor takes over
    with CampaignLock(path) as lock:
        assert lock.took_over_pid == holder.pid
        assert read_pid(path) == os.getpid()
    assert read_pid(path) is None and not os.path.exists(path)   # released: no lock file left


def test_an_acquirer_that_opened_the_file_its_owner_then_removed_locks_the_new_one(tmp_path, monkeypatch):
    """The owner removes the file on release; a process that opened the old file just before
    must not take the lock on that removed file, but on the one now at the path."""
    path = str(tmp_path / "supervisor.lock")
    first = CampaignLock(path).acquire()
    stale = os.open(path, os.O_RDWR)   # opened just before the release
    first.release()
    real_open, opened = os.open, []

    def racing_open(name, flags, mode=0o777):
        opened.append(name)
        return stale if len(opened) == 1 else real_open(name, flags, mode)
    monkeypatch.setattr(os, "open", racing_open)
    second = CampaignLock(path).acquire()
    monkeypatch.undo()
    try:
        assert len(opened) == 2 and os.fstat(second.fd).st_ino == os.stat(path).st_ino
        with pytest.raises(UserError, match="locked"):
            CampaignLock(path).acquire()
    finally:
        second.release()


def test_stale_lock_file_from_a_dead_pid_is_taken_over(tmp_path):
    path = tmp_path / "supervisor.lock"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path.write_text(dead.stdout)
    lock = CampaignLock(str(path)).acquire()
    try:
        assert lock.took_over_pid == int(dead.stdout) and read_pid(str(path)) == os.getpid()
        with pytest.raises(UserError, match="locked"):
            CampaignLock(str(path)).acquire()   # a second holder, even in the same process, is refused
    finally:
        lock.release()
