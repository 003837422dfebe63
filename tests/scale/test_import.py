"""``import workbench`` leaves Ray alone; ``workbench.ray`` imports it on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_import_workbench_does_not_import_ray():
    code = ("import sys, workbench; assert 'ray' not in sys.modules, 'ray imported'; "
            "m = workbench.ray; assert 'ray' in sys.modules and m.__name__ == 'workbench.ray'; "
            "import ray; assert ray.__name__ == 'ray' and hasattr(ray, 'init') and m.ray is ray")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
