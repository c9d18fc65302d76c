"""Trials run the code the ledger fingerprints: the supervised repository's own foundry, if it holds one.

    run_supervised_code(repo_root, argv)   # in `foundry run`: re-exec with the repository's code, or refuse
    env = trial_env(repo_root)             # PYTHONPATH for the worker pool: the repository's code first
    why = wrong_code(summary, repo_root)   # "" or why a finished trial did not run that code

A coding agent that works in a second checkout and types `foundry run` gets the `foundry` of
whatever checkout is installed (an editable install points at the first one), while the ledger
fingerprints the repository it supervises. So when that repository holds a foundry package and
this process imported another one, `foundry run` starts itself again with the repository first
on sys.path (the log says so), and every trial gets the repository first on PYTHONPATH. If the
repository's package still is not the one imported (a broken checkout), it refuses and says why.
Each trial's summary.json names the folder its foundry came from (`code_root`); a trial that
ran other code fails with that reason instead of being ranked. A repository without its own
package runs the installed one, and its fingerprint says so (foundry.lineage.repo.running_code).
"""
from __future__ import annotations

import os
import sys

from foundry.errors import UserError
from foundry.lineage.repo import holds_package, imported_root

REEXEC_MARK = "FOUNDRY_SUPERVISED_CODE"   # set on the re-executed supervisor: never loop


def _same(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def expected_root(repo_root: str) -> str | None:
    """The folder trials must import foundry from, or None (the installed package, whatever it is)."""
    return repo_root if holds_package(repo_root) else None


def run_supervised_code(repo_root: str, argv: list[str], log=print) -> None:
    """Return when this process runs the repository's code; else re-exec `foundry ARGV` so it does."""
    if not holds_package(repo_root) or _same(imported_root(), repo_root):
        return
    if os.environ.get(REEXEC_MARK):
        raise UserError(f"{repo_root} holds its own foundry package, but even with it first on sys.path this "
                        f"process imports {imported_root()}/foundry; fix that checkout (is foundry/__init__.py "
                        "importable?) or run `python -m foundry.cli run` from it")
    log(f"{repo_root} holds its own foundry package; this `foundry` runs {imported_root()}/foundry. "
        "Restarting with the repository's code, so that the supervisor and its trials run what the "
        "ledger fingerprints.")
    sys.stdout.flush()
    sys.stderr.flush()
    bootstrap = f"import sys; sys.path.insert(0, {repo_root!r}); sys.argv[0] = 'foundry'; " \
                "from foundry.cli import main; sys.exit(main())"
    env = {**os.environ, REEXEC_MARK: repo_root, **trial_env(repo_root)}
    os.execve(sys.executable, [sys.executable, "-c", bootstrap, *argv], env)


def trial_env(repo_root: str) -> dict:
    """Environment for trial processes: the repository first on PYTHONPATH when it holds the package."""
    if not holds_package(repo_root):
        return {}
    rest = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": repo_root + (os.pathsep + rest if rest else "")}


def wrong_code(summary: dict | None, repo_root: str) -> str:
    """'' if the trial ran the repository's foundry (or the repository holds none), else the reason."""
    expected = expected_root(repo_root)
    ran = (summary or {}).get("code_root")
    if expected is None or (ran is not None and _same(ran, expected)):
        return ""
    return (f"trial ran foundry from {ran or 'a checkout that does not record code_root'}, not the supervised "
            f"repository's {expected} (the code the ledger fingerprints)")
