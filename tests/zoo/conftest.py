"""Fixtures of the zoo tests: a tiny random Hugging Face folder per family (built once per session),
and its import as a Foundry run folder."""
import pytest

from foundry.zoo import FAMILIES, import_folder
from tests.zoo.hf_models import save_tiny


@pytest.fixture(scope="session")
def hf_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {family: save_tiny(root / family, family) for family in FAMILIES}


@pytest.fixture(scope="session")
def imported(hf_folders, tmp_path_factory):
    root = tmp_path_factory.mktemp("imported")
    return {family: import_folder(folder, str(root / family), log=lambda *a: None)["out"]
            for family, folder in hf_folders.items()}
