"""The HumanEval sandbox: hostile programs are contained, recorded as failures, and the evaluator
carries on; nothing outside the temporary folder changes; the parent survives."""
import os

import pytest

from foundry.benchmarks.sandbox import SandboxLimits, run_program, run_programs

LIMITS = SandboxLimits(timeout=1.5, memory_mb=512)

HOSTILE = {
    "infinite_loop": ("while True:\n    pass\n", "timeout"),
    "sleep_forever": ("import time\ntime.sleep(60)\n", "timeout"),
    "fork_loop": ("import os\nwhile True:\n    os.fork()\n", "failed"),
    "fork_via_posix": ("import posix\nposix.fork()\n", "failed"),
    "subprocess": ("import subprocess\nsubprocess.run(['true'])\n", "failed"),
    "multiprocessing": ("import multiprocessing\nmultiprocessing.Process(target=print).start()\n", "failed"),
    "ctypes_fork": ("import ctypes\nctypes.CDLL(None).fork()\n", "failed"),
    "huge_allocation": ("x = bytearray(10 ** 11)\n", "failed"),
    "huge_list": ("x = [0] * 10 ** 10\n", "failed"),
    "huge_file": ("f = open('big', 'wb')\nwhile True:\n    f.write(b'x' * 10 ** 6)\n", "failed"),
    "output_flood": ("while True:\n    print('x' * 10000)\n", "failed"),
    "sys_exit_0": ("import sys\nsys.exit(0)\n", "failed"),
    "raise_system_exit": ("raise SystemExit(0)\n", "failed"),
    "os_exit_0": ("import os\nos._exit(0)\n", "failed"),
    "kill_parent": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", "failed"),
    "kill_group": ("import os, signal\nos.killpg(0, signal.SIGKILL)\n", "failed"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_sample_is_contained(name):
    program, status = HOSTILE[name]
    record = run_program(program, LIMITS)
    assert not record["passed"]
    assert record["status"] == status, record
    assert record["seconds"] < LIMITS.timeout + 5


def test_writes_and_deletes_outside_the_folder_fail(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    target = str(tmp_path)
    attacks = [
        f"import os\nos.remove({str(victim)!r})\n",
        f"import os\nos.unlink({str(victim)!r})\n",
        f"import os\nos.rename({str(victim)!r}, 'stolen')\n",
        f"import shutil\nshutil.rmtree({target!r})\n",
        f"open({str(victim)!r}, 'w').write('gone')\n",
        f"open({target + '/new.txt'!r}, 'x')\n",
        f"import pathlib\npathlib.Path({target!r}, 'p.txt').write_text('x')\n",
        f"import os\nos.open({target + '/o.txt'!r}, os.O_WRONLY | os.O_CREAT)\n",
        f"import _io\n_io.FileIO({target + '/f.txt'!r}, 'w')\n",
        "open('../escaped.txt', 'w').write('x')\n",
        "import os\nos.symlink('/', 'root')\nopen('root/tmp/escaped.txt', 'w')\n",
    ]
    records = run_programs(attacks, LIMITS, workers=2)
    assert [r["status"] for r in records] == ["failed"] * len(attacks), records
    assert all("PermissionError" in r["error"] for r in records)
    assert sorted(os.listdir(tmp_path)) == ["victim.txt"] and victim.read_text() == "keep"


def test_inside_the_folder_is_allowed_and_cleaned_up():
    program = ("import os, tempfile\nopen('a.txt', 'w').write('x')\nos.mkdir('d')\nos.rename('a.txt', 'd/b.txt')\n"
               "assert open('d/b.txt').read() == 'x'\nprint(os.getcwd())\n"
               "with tempfile.NamedTemporaryFile() as f:\n    assert f.name.startswith(os.getcwd())\n")
    record = run_program(program, LIMITS)
    assert record["passed"], record
    assert not os.path.exists(record["stdout"].strip())  # the temporary folder is gone


def test_clean_environment(monkeypatch):
    monkeypatch.setenv("FOUNDRY_SECRET_FOR_TEST", "1")
    record = run_program("import os\nassert 'FOUNDRY_SECRET_FOR_TEST' not in os.environ\n"
                         "assert sorted(os.environ) == ['HOME', 'LANG', 'PATH', 'TMPDIR'], sorted(os.environ)\n",
                         LIMITS)
    assert record["passed"], record


def test_the_evaluator_carries_on_after_hostile_samples():
    programs = ["assert 1 + 1 == 2\n", HOSTILE["kill_parent"][0], HOSTILE["fork_loop"][0],
                HOSTILE["infinite_loop"][0], "assert sum(range(4)) == 6\n", "assert False\n"]
    records = run_programs(programs, LIMITS, workers=2)
    assert [r["status"] for r in records] == ["passed", "failed", "failed", "timeout", "passed", "failed"]
    assert records[5]["error"].startswith("AssertionError")
