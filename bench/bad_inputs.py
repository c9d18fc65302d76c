"""The bad inputs of tests/bad_inputs.py run as real `foundry` processes, printed as a table:
input -> exit code -> message, with whether each kept the promise (exit 2, one line, no
traceback, nothing written), and a reader that closes the pipe early.

    python bench/bad_inputs.py                 # every case (one process each: a few minutes)
    python bench/bad_inputs.py --category files
    python bench/bad_inputs.py --markdown      # the table as Markdown, for an issue or a note

Paths in the table are shortened to the sandbox's names ({run}, {tiny}, ...). Exits 1 if any
case broke the promise.
"""
import argparse
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.bad_inputs import CASES, build_sandbox, expand, snapshot  # noqa: E402


def foundry(args: list[str], sandbox: dict, close_stdout: bool = False) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "foundry.cli", *args], cwd=sandbox["root"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if close_stdout:
        proc.stdout.close()   # the reader is gone before the first line, as `| head` soon is
        err = proc.stderr.read()
        return proc.wait(timeout=600), err
    _, err = proc.communicate(timeout=600)
    return proc.returncode, err


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--category", choices=sorted(CASES), action="append", help="only these (repeatable)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FOUNDRY_CACHE"] = os.path.join(tmp, "cache")   # outside the sandbox: caches may be written
        sandbox = build_sandbox(os.path.join(tmp, "sandbox"))
        short = sorted(((v, f"{{{k}}}") for k, v in sandbox.items() if k != "root"), key=lambda kv: -len(kv[0]))
        rows, broken = [], 0
        for category in args.category or list(CASES):
            for template, message in CASES[category]:
                before = snapshot(sandbox["root"])
                code, err = foundry(expand(template, sandbox), sandbox)
                lines = err.strip().splitlines()
                ok = (code == 2 and len(lines) == 1 and "Traceback" not in err and message in err
                      and snapshot(sandbox["root"]) == before)
                broken += not ok
                text = lines[0] if len(lines) == 1 else f"({len(lines)} lines) " + " | ".join(lines[-2:])
                for path, name in short:
                    text = text.replace(path, name)
                text = text.replace(sandbox["root"], "{root}")
                shown = template if len(template) <= 70 else template[:67] + "..."
                rows.append((category, f"foundry {shown}", code, text, "ok" if ok else "BROKEN"))
        for args_ in (["mutate", "--list"], ["--help"]):
            code, err = foundry(args_, sandbox, close_stdout=True)
            ok = code == 141 and err == ""
            broken += not ok
            rows.append(("pipe", f"foundry {' '.join(args_)} | head  (reader gone)", code,
                         err.strip() or "(nothing on stderr)", "ok" if ok else "BROKEN"))
    if args.markdown:
        print("| # | category | input | exit | message |\n|---|---|---|---|---|")
        for i, (category, command, code, text, ok) in enumerate(rows, 1):
            cell = text.replace("|", "\\|")
            print(f"| {i} | {category} | `{command}` | {code} | {cell}{'' if ok == 'ok' else ' **BROKEN**'} |")
    else:
        for i, (category, command, code, text, ok) in enumerate(rows, 1):
            print(f"{i:3} {category:<10} {command:<80} -> {code:>3} -> {text}  [{ok}]")
    print(f"\n{len(rows)} bad inputs, {len(rows) - broken} kept the promise, {broken} broke it")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
