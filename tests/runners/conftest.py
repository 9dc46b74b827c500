from __future__ import annotations

from pathlib import Path

import pytest

from tests.runners.tiny import make_listops


@pytest.fixture(scope="session")
def listops_dir(tmp_path_factory) -> Path:
    """A small generated ListOps shared by the runner tests."""
    return make_listops(tmp_path_factory.mktemp("lra"))
