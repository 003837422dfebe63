import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _clean_view_registry():
    """Each test starts with no extra views (other packages register theirs on import) and leaks none."""
    from workbench.inspector import extensions

    before = dict(extensions._VIEWS)
    extensions._VIEWS.clear()
    yield
    extensions._VIEWS.clear()
    extensions._VIEWS.update(before)
