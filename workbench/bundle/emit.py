"""Writing the bundle's ``source.py`` from the :class:`~workbench.bundle.records.Records` of a capture.

The file reads top to bottom like a small script: a header saying what it is, the imports, then
every definition in the order it must run (each with a comment naming where it came from), and
finally ``pipeline = ...``. It expects ``_bundle`` (a :class:`~workbench.bundle.runtime.BundleRuntime`)
in its namespace, which :func:`workbench.bundle.load` provides. The text is made once, here; nothing
edits it afterwards.

>>> from workbench import transform
>>> from workbench.bundle.capture import Capture
>>> cap = Capture(); cap.capture(transform(len))
>>> print(render(cap.records).splitlines()[-1])
pipeline = _wb.FunctionTransform(len)
"""

from __future__ import annotations

from .records import Records

__all__ = ["render", "HEADER"]

HEADER = '''\
# Source of a workbench bundle: it rebuilds the saved pipeline as `pipeline`.
# `workbench.load` runs this file with `_bundle` bound to the bundle's data files;
# `workbench info` shows it without running it. Each definition says where it came from.
'''


def render(records: Records) -> str:
    """The complete source text: header, imports (each once), statements (blocks set off by blank lines)."""
    imports = ["import workbench as _wb"]
    for line in records.imports:
        if line not in imports:
            imports.append(line)
    parts = [HEADER, "\n".join(imports), ""]
    previous_multiline = False
    for statement in records.statements:
        text = statement.source
        multiline = "\n" in text
        if multiline or previous_multiline:
            parts.append("")
        parts.append(text)
        previous_multiline = multiline
    return "\n".join(parts).rstrip("\n") + "\n"
