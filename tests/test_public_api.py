"""The public surface: ``workbench.__all__`` and ``workbench.errors.__all__`` are what docs/api.md lists."""

from __future__ import annotations

import ast
import inspect as stdlib_inspect
import re
import warnings
from pathlib import Path

import pytest

import workbench
import workbench.errors

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api.md"


def _documented(section: str) -> list[str]:
    """The names in the first column of the table under the heading ``## `section` ``."""
    text = API.read_text(encoding="utf-8")
    body = text.split(f"## `{section}`\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Za-z_]\w*)` \|", body, flags=re.MULTILINE)


def test_all_is_exactly_the_documented_api():
    documented = _documented("workbench")
    assert len(documented) == len(set(documented))
    assert sorted(workbench.__all__) == sorted(documented)
    for name in workbench.__all__:
        assert getattr(workbench, name) is not None


def test_errors_all_is_exactly_the_documented_errors():
    documented = _documented("workbench.errors")
    assert sorted(workbench.errors.__all__) == sorted(documented)
    for name in workbench.errors.__all__:
        cls = getattr(workbench.errors, name)
        assert issubclass(cls, (Exception, Warning)) and cls.__module__ == "workbench.errors"


def test_every_exception_class_workbench_defines_is_in_errors():
    """A public exception or warning class defined anywhere else would have no public place to import it from."""
    found = []
    for path in sorted((ROOT / "workbench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                if any(re.search(r"(Error|Exception|Warning)$", b) for b in bases):
                    found.append((path.relative_to(ROOT).as_posix(), node.name))
    outside = [(p, n) for p, n in found if p != "workbench/errors.py"]
    # QueueFull never leaves the server: the app answers 503 with it.
    assert outside == [("workbench/serving/batcher.py", "QueueFull")]
    assert sorted(n for p, n in found if p == "workbench/errors.py") == sorted(workbench.errors.__all__)


def test_the_modules_that_raise_them_share_the_classes():
    from workbench import bundle, export, predict
    from workbench.bundle import report
    from workbench.serving import server

    assert bundle.CaptureError is workbench.CaptureError is workbench.errors.CaptureError
    assert bundle.IntegrityError is workbench.errors.IntegrityError
    assert report.LargeDataWarning is bundle.LargeDataWarning is workbench.errors.LargeDataWarning
    assert server.LoadFailed is workbench.LoadFailed
    assert export.PipelineNotFound is workbench.errors.PipelineNotFound
    assert issubclass(workbench.errors.PipelineNotFound, (workbench.errors.ExportError, LookupError))
    assert predict.InputError is workbench.errors.InputError and predict.NamesError is workbench.errors.NamesError


def test_star_import_keeps_the_standard_library_inspect():
    namespace = {"inspect": stdlib_inspect}
    exec("from workbench import *", namespace)
    assert namespace["inspect"] is stdlib_inspect
    assert namespace["trace"] is workbench.trace and namespace["Trace"] is workbench.Trace
    assert "inspect" not in workbench.__all__ and callable(workbench.inspect)


def test_trace_and_explanation_are_what_the_functions_return():
    import torch

    pl = workbench.transform(torch.as_tensor) >> workbench.batch >> workbench.transform(torch.nn.Linear(3, 2))
    assert isinstance(workbench.trace(pl, [1.0, 2.0, 3.0]), workbench.Trace)
    assert isinstance(workbench.explain(pl, [1.0, 2.0, 3.0], method="saliency"), workbench.Explanation)


def test_step_name_reads_the_given_name():
    inc = workbench.transform(lambda x: x + 1)
    named = inc - "inc"
    pl = named >> workbench.transform(str)
    assert workbench.step_name(named) == "inc" and workbench.step_name(inc) is None
    assert workbench.step_name(pl["inc"]) == "inc" and workbench.step_name(pl) is None
    with pytest.raises(TypeError, match="needs a workbench step"):
        workbench.step_name(len)


def test_warnings_can_be_filtered_by_their_public_class():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", workbench.errors.LargeDataWarning)
        warnings.warn("big", workbench.bundle.LargeDataWarning)
    assert caught == []


def _private_imports() -> set[tuple[str, str, str]]:
    """``(importing file, imported module, name)`` for each private name a workbench module imports
    from another workbench module, except within one subpackage (``bundle``, ``inspector``...)."""
    found = set()
    for path in sorted((ROOT / "workbench").rglob("*.py")):
        rel = path.relative_to(ROOT)
        package = rel.parent.parts  # ("workbench",) or ("workbench", "bundle")...
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package[: len(package) - node.level + 1]
                source = ".".join(base + tuple((node.module or "").split(".")) if node.module else base)
            elif (node.module or "").startswith("workbench"):
                source = node.module
            else:
                continue  # another library's private name is that library's business
            same_subpackage = len(package) > 1 and source.startswith(".".join(package) + ".")
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") and not same_subpackage:
                    found.add((rel.as_posix(), source, alias.name))
    return found


def test_private_helpers_cross_modules_only_through_the_runners_module():
    """workbench._running is the one deliberate home of what the runners share; it may import the
    private context variables and note helpers of its neighbours, nothing else may."""
    crossing = {f for f in _private_imports() if f[0] != "workbench/_running.py"}
    # What remains: the composite base class (display and trace test for it) and how bundles recognise a
    # wrapped object; no new crossing may be added.
    known = {
        ("workbench/display.py", "workbench.pipeline", "_Composite"),
        ("workbench/inspector/tracing.py", "workbench.pipeline", "_Composite"),
        ("workbench/bundle/objects.py", "workbench.transform", "_WRAPPED"),
    }
    assert crossing <= known, sorted(crossing - known)
    assert {name for _, _, name in _private_imports() - crossing} == {"_MODE", "_DEVICE", "_annotate"}
