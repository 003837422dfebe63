"""``workbench info BUNDLE``: what a bundle holds, read from its files without running any of it.

Only ``manifest.json`` is parsed (as JSON) and ``source.py`` read as text; files are hashed to report
their integrity. Nothing from the bundle is imported or executed.

>>> print(render_info("model.wb"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import manifest as _manifest
from .errors import IntegrityError

__all__ = ["render_info", "structure_text"]


def structure_text(node: dict[str, Any]) -> str:
    """The stored ``describe`` tree as indented text, one step a line."""
    lines = [_node_label(node)]
    _children(node, "", lines)
    return "\n".join(lines)


def _node_label(node: dict[str, Any]) -> str:
    label = node.get("label", "?")
    kind = node.get("kind", "step")
    text = label if kind == "step" or node.get("name") else f"{kind} {label}" if label != kind else kind
    if node.get("params"):
        text += f"  ({node['params']:,} params)"
    return text


def _children(node: dict[str, Any], indent: str, lines: list[str]) -> None:
    children = node.get("children") or []
    for i, child in enumerate(children):
        last = i == len(children) - 1
        branch = "└─ " if last else "├─ "
        if child.get("kind") in ("batch", "unbatch"):
            lines.append(f"{indent}{branch}══ {child['kind']} ══")
            continue
        lines.append(f"{indent}{branch}[{i}] {_node_label(child)}   [{child.get('stage', '')}]")
        _children(child, indent + ("   " if last else "│  "), lines)


def _origin_text(origin: dict[str, Any] | None) -> str:
    from .source import describe_origin

    if not origin:
        return ""
    return describe_origin(origin, origin.get("line"))


def render_info(path: str | Path, *, show_source: bool = True) -> tuple[str, str | None]:
    """``(text, problem)``: the report, and the integrity problem found (None when every file checks out).

    Raises :class:`IntegrityError` when there is no readable manifest at all.
    """
    root = Path(path)
    manifest = _manifest.read(root)
    problem = None
    try:
        _manifest.verify(root, manifest)
    except IntegrityError as exc:
        problem = str(exc)
    versions = manifest.get("versions", {})
    out = [f"bundle   {root}",
           f"format   {manifest['format']} v{manifest['format_version']}, created {manifest.get('created', '?')}",
           "written  " + ", ".join(f"{k} {v}" for k, v in versions.items()),
           f"files    {'all ' + str(len(manifest['files'])) + ' verified' if problem is None else 'PROBLEM: ' + problem}",
           "", "structure:"]
    structure = manifest.get("structure")
    out.extend("  " + line for line in (structure_text(structure) if structure else "(not recorded)").splitlines())
    out += ["", "definitions:"]
    for d in manifest.get("definitions", []):
        out.append(f"  {d['name']:<24} {d['kind']:<10} {_origin_text(d.get('origin')) or d.get('module', '')}")
    if "globals" in manifest:
        from .report import CaptureReport

        report = CaptureReport.from_json(manifest["globals"])
        out += ["", "stored globals:"] + ["  " + line for line in report.text().splitlines()]
    out += ["", "requirements:"] + [f"  {r}" for r in manifest.get("requirements", [])]
    if manifest.get("python_requires"):
        out.append(f"  python{manifest['python_requires']}")
    out += ["", "files:"]
    for rel, entry in sorted(manifest["files"].items()):
        out.append(f"  {rel:<40} {entry['size']:>12,} bytes  sha256 {entry['sha256'][:16]}…")
    if show_source:
        source_path = root / _manifest.SOURCE
        out += ["", f"source ({_manifest.SOURCE}, not executed):", ""]
        if source_path.is_file():
            out.append(source_path.read_text(encoding="utf-8", errors="replace").rstrip("\n"))
        else:
            out.append("  (missing)")
    return "\n".join(out) + "\n", problem
