"""The component registry (foundry/model/modules/__init__.py): a component file that fails to
import breaks only the configs that name it, with one line that names the file.

    python -m pytest tests/model/modules/test_registry.py -q
"""
import os
import shutil
import subprocess
import sys

import pytest

from foundry import catalog
from foundry.config import ConfigError
from foundry.model import modules
from tests.conftest import REPO


def test_registered_names_are_read_from_the_source_without_importing(tmp_path):
    path = tmp_path / "thing.py"
    path.write_text("import nothing_here\n\nclass A: pass\n\nATENTION = {'fancy': A, 'plain': A}\nlower = {'x': 1}\n")
    assert modules.registered_names(str(path)) == ["fancy", "plain"]


def test_a_broken_file_is_recorded_not_raised(monkeypatch):
    where = os.path.join("foundry", "model", "modules", "sparse.py")
    monkeypatch.delitem(modules.ATTENTION, "sparse")        # as if sparse.py had failed at import
    try:
        with modules.component_file("sparse.py"):
            raise ImportError("cannot import name 'ATTENTION'")
        assert modules.BROKEN[where] == "ImportError: cannot import name 'ATTENTION'"
        assert modules.BROKEN_NAMES["sparse"] == where
        with pytest.raises(ConfigError, match=r"model.attention: 'sparse' comes from foundry/model/modules/"
                                              r"sparse.py, which failed to import: ImportError: cannot import"):
            catalog.from_dict({"model": {"attention": "sparse", "window": 4, "stride": 4}, "budget": {"steps": 1}})
    finally:
        modules.BROKEN.pop(where, None)
        modules.BROKEN_NAMES.pop("sparse", None)


def test_a_misnamed_registry_breaks_only_the_configs_that_name_it(tmp_path):
    """As a coding agent might leave it: sparse.py's registry dict misnamed. Every other command works."""
    shutil.copytree(os.path.join(REPO, "foundry"), tmp_path / "foundry",
                    ignore=shutil.ignore_patterns("__pycache__"))
    sparse = tmp_path / "foundry" / "model" / "modules" / "sparse.py"
    sparse.write_text(sparse.read_text().replace("ATTENTION = {", "ATTENTON = {"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}

    def validate(*overrides):
        return subprocess.run([sys.executable, "-m", "foundry.cli", "validate",
                               os.path.join(REPO, "baselines", "tiny.yaml"), *overrides],
                              capture_output=True, text=True, env=env, cwd=tmp_path)

    ok = validate("model.attention=mla")
    assert ok.returncode == 0, ok.stderr
    broken = validate("model.attention=sparse", "model.window=8", "model.stride=8")
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert broken.stderr.strip().splitlines() == [
        f"foundry validate: error: {os.path.join(REPO, 'baselines', 'tiny.yaml')}: model.attention: 'sparse' comes "
        "from foundry/model/modules/sparse.py, which failed to import: AttributeError: module "
        "'foundry.model.modules.sparse' has no attribute 'ATTENTION'"]
