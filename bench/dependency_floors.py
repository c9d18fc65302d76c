"""Do the floors in pyproject.toml hold? A fresh virtual environment gets every dependency at
its floor (`name>=X` installed as `name==X`) from the package registry, foundry itself without
dependencies, and runs the tests that use those libraries the most: Hugging Face loading and
scoring (transformers, tokenizers), LoRA (peft), checkpoints (safetensors), TensorBoard events,
git promotions (GitPython), MinHash dedupe (datasketch), the model zoo's parity with transformers.

    FOUNDRY_DATA=../shared/data python bench/dependency_floors.py
    python bench/dependency_floors.py --torch torch==2.13.0 --keep /tmp/floors   # reuse the venv
    python bench/dependency_floors.py --tests tests                               # the whole suite

torch is the exception: its floor (2.4) is not installed here, where only the local CPU wheel
is at hand; --torch names the torch requirement to install (default torch==2.13.0).
Prints what was installed and the test result; exits with pytest's exit code.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import tomllib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = ["tests/benchmarks/test_lm.py", "tests/benchmarks/test_bpb.py", "tests/benchmarks/test_cli.py",
         "tests/training/test_loop.py", "tests/training/test_run_files.py", "tests/lineage", "tests/data",
         "tests/zoo"]   # zoo: transformers parity and peft adapters; data: datasketch


def floors() -> dict[str, str]:
    """name -> floor version of every `name>=X` dependency in pyproject.toml."""
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    out = {}
    for requirement in project["dependencies"] + project["optional-dependencies"]["dev"]:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)\s*", requirement)
        if not match:
            raise SystemExit(f"pyproject.toml: {requirement!r} has no `>=` floor to test")
        out[match.group(1).lower()] = match.group(2)
    return out


def run(command: list[str], **kwargs) -> None:
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, **kwargs)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--torch", default="torch==2.13.0", help="the torch requirement to install")
    p.add_argument("--keep", help="make (or reuse) the environment in this folder instead of a temporary one")
    p.add_argument("--tests", nargs="*", default=TESTS, help="test paths to run")
    args = p.parse_args()
    wanted = floors()
    pins = [args.torch] + [f"{name}=={version}" for name, version in wanted.items() if name != "torch"]
    with tempfile.TemporaryDirectory() as tmp:
        venv = args.keep or os.path.join(tmp, "venv")
        python = os.path.join(venv, "bin", "python")
        if not os.path.exists(python):
            run([sys.executable, "-m", "venv", venv])
        run([python, "-m", "pip", "install", "-q", *pins])
        run([python, "-m", "pip", "install", "-q", "--no-deps", "-e", REPO])
        shown = subprocess.run([python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                               check=True).stdout.lower().splitlines()
        print("\ninstalled at the floors:")
        for line in shown:
            name = line.split("==")[0]
            if name in wanted or name in ("torch", "huggingface-hub", "huggingface_hub"):
                print(f"  {line}   (floor {wanted.get(name, '-')})")
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        done = subprocess.run([python, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider",
                               *args.tests], cwd=REPO, env=env)
        print(f"\npytest at the floors: exit code {done.returncode}")
        return done.returncode


if __name__ == "__main__":
    sys.exit(main())
