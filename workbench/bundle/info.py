r"""``workbench info BUNDLE``: what a bundle holds, read from its files without running any of it.

Only ``manifest.json`` is parsed (as JSON) and ``source.py`` read as text; files are hashed to report
their integrity (:mod:`.snapshot`: nothing outside the bundle is read). Nothing from the bundle is
imported or executed. Control characters in the source and in manifest strings are shown escaped
(``\x1b``), so terminal escape sequences or bidirectional-text controls cannot hide code; the source
of a bundle that fails verification is not shown at all. The report starts with the manifest's
sha256, which pins the whole bundle (``workbench info --expect DIGEST``, ``load(path, expect=...)``).

>>> print(render_info("model.wb"))  # doctest: +SKIP
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

from . import manifest as _manifest
from . import snapshot as _snapshot

__all__ = ["render_info", "structure_text", "escape_controls"]


def escape_controls(text: str, *, keep_lines: bool = False) -> str:
    r"""``text`` with control and format characters written as escapes (``\x1b``, ``\u202e``).

    ``keep_lines`` keeps newlines and tabs (for source text).

    >>> escape_controls("ok\x1b[2Khidden")
    'ok\\x1b[2Khidden'
    """
    out = []
    for ch in text:
        if keep_lines and ch in "\n\t":
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(repr(ch)[1:-1] if ch.isascii() else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def structure_text(node: dict[str, Any]) -> str:
    """The stored ``describe`` tree as indented text, one step a line, each with its stage."""
    from ..display import tree_text

    label = node.get("label", "?")
    head = label if node.get("name") or not node.get("children") else f"{node.get('symbol') or node.get('kind')} {label}"
    if node.get("params"):
        head += f"  ({node['params']:,} params)"
    return "\n".join([head, *tree_text(node, stages=True)])


def _origin_text(origin: dict[str, Any] | None) -> str:
    from .source import describe_origin

    if not origin:
        return ""
    try:
        return describe_origin(origin, origin.get("line"))
    except (TypeError, ValueError, KeyError, AttributeError):
        return "(unreadable origin)"


def _annotation_text(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"callable"}:
        return f"callable {value['callable']} (defined in {_manifest.SOURCE})"
    if isinstance(value, dict):
        shown = ", ".join(f"{k}: {v}" for k, v in list(value.items())[:8])
        return f"{len(value)} entries: {shown}" + (", …" if len(value) > 8 else "")
    if not isinstance(value, list):
        return repr(value)[:200]
    shown = ", ".join(map(str, value[:12]))
    return f"{len(value)}: {shown}" + (", …" if len(value) > 12 else "")


def render_info(path: str | Path, *, show_source: bool = True) -> tuple[str, str | None, str]:
    """``(text, problem, digest)``: the report, the integrity problem found (None when every file checks
    out) and the manifest's sha256.

    Raises :class:`IntegrityError` when there is no readable manifest at all.
    """
    root = Path(path)
    snap = _snapshot.read(root, keep=frozenset({_manifest.SOURCE}), tolerate=True)
    manifest, problem = snap.manifest, snap.problem
    versions = manifest.get("versions", {})
    out = [f"bundle   {root}",
           f"sha256   {snap.digest}  (of manifest.json; pin it with --expect)",
           f"format   {manifest['format']} v{manifest['format_version']}, created {manifest.get('created', '?')}",
           "written  " + ", ".join(f"{k} {v}" for k, v in versions.items()),
           f"files    {'all ' + str(len(manifest['files'])) + ' verified' if problem is None else 'PROBLEM: ' + problem}",
           "", "structure:"]
    structure = manifest.get("structure")
    out.extend("  " + line for line in (structure_text(structure) if structure else "(not recorded)").splitlines())
    annotations = manifest.get("annotations")
    if isinstance(annotations, dict) and annotations:
        out += ["", "annotations:"] + [f"  {key:<14} {_annotation_text(value)}" for key, value in annotations.items()]
    out += ["", "definitions:"]
    for d in manifest.get("definitions", []):
        out.append(f"  {d.get('name', '?'):<24} {d.get('kind', '?'):<10} "
                   f"{_origin_text(d.get('origin')) or d.get('module', '')}")
    if "globals" in manifest:
        from .report import CaptureReport

        try:
            report = CaptureReport.from_json(manifest["globals"]).text()
        except (TypeError, ValueError, KeyError, AttributeError):
            report = "(unreadable)"
        out += ["", "stored globals:"] + ["  " + line for line in report.splitlines()]
    out += ["", "requirements:"] + [f"  {r}" for r in manifest.get("requirements", [])]
    if manifest.get("python_requires"):
        out.append(f"  python{manifest['python_requires']}")
    out += ["", "files:"]
    for rel, entry in sorted(manifest["files"].items()):
        out.append(f"  {rel:<40} {entry['size']:>12,} bytes  sha256 {entry['sha256'][:16]}…")
    out = [escape_controls(line) for line in out]
    if show_source:
        out += ["", f"source ({_manifest.SOURCE}, not executed):", ""]
        if problem is None:
            text = bytes(snap.files[_manifest.SOURCE]).decode("utf-8", errors="replace")
            out.append(escape_controls(text.rstrip("\n"), keep_lines=True))
        else:
            out.append("  (not shown: the bundle failed verification)")
    return "\n".join(out) + "\n", problem, snap.digest
