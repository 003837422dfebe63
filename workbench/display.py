"""How a pipeline shows itself: as text, as HTML, and as JSON for the JupyterLab renderer.

All three are drawn from one description, :func:`describe`, a tree of plain dicts::

    {"kind": "compose" | "rollout" | "parallel" | "map" | "if" | "try" | "step" | "batch" | "unbatch",
     "label": "normalize",            # the step's name, or what it wraps
     "name": "normalize" | None,      # the name given with ``t - "name"``
     "type": "FunctionTransform",     # the Python class
     "stage": "preprocess" | "forward" | "postprocess",
     "params": 36,                    # trainable and frozen parameters of torch layers (0 otherwise)
     "children": [...]}

:data:`MIME_TYPE` bundles carry ``{"version": 1, "root": <that tree>}``.
"""

from __future__ import annotations

import html
from typing import Any

from .pipeline import (
    STAGE_NAMES,
    Batch,
    Compose,
    IfMode,
    Map,
    Parallel,
    Rollout,
    Transform,
    Try,
    Unbatch,
    _Composite,
)

__all__ = ["MIME_TYPE", "describe", "to_text", "to_html", "mimebundle"]

MIME_TYPE = "application/vnd.workbench.pipeline+json"
_KINDS = {Compose: "compose", Rollout: "rollout", Parallel: "parallel", Map: "map", Try: "try"}
_MAX_LABEL = 70


def describe(t: Transform, stage: int | None = None) -> dict[str, Any]:
    """The pipeline as a tree of plain dicts (see the module docstring).

    Stages start where the pipeline's input enters: preprocess when it has ``batch``, else forward.
    """
    node, _ = _describe(t, t._wb_entry_stage() if stage is None else stage)
    return node


def _describe(t: Transform, stage: int) -> tuple[dict[str, Any], int]:
    kind = _kind(t)
    node: dict[str, Any] = {
        "kind": kind,
        "label": _label(t),
        "name": t._wb_name,
        "type": type(t).__name__,
        "stage": STAGE_NAMES[stage],
        "params": _params(t),
        "children": [],
    }
    if isinstance(t, Batch):
        return node, 1
    if isinstance(t, Unbatch):
        return node, 2
    end = stage
    if isinstance(t, Compose):
        for child in t._wb_children():
            child_node, end = _describe(child, end)
            node["children"].append(child_node)
    elif isinstance(t, _Composite):
        for child in t._wb_children():
            child_node, child_end = _describe(child, stage)
            node["children"].append(child_node)
            end = max(end, child_end)
    if isinstance(t, IfMode):
        node["mode"] = t.mode
    return node, end


def _kind(t: Transform) -> str:
    if isinstance(t, Batch):
        return "batch"
    if isinstance(t, Unbatch):
        return "unbatch"
    if isinstance(t, IfMode):
        return "if"
    for cls, kind in _KINDS.items():
        if isinstance(t, cls):
            return kind
    return "step"


def _label(t: Transform) -> str:
    if t._wb_name:
        return t._wb_name
    if isinstance(t, IfMode):
        return f"If{t.mode.capitalize()}"
    if isinstance(t, _Composite):
        return {Compose: "compose", Rollout: "rollout", Parallel: "parallel", Map: "map", Try: "Try"}.get(
            type(t), type(t).__name__
        )
    label = t._wb_kind()
    if _is_layer(t):  # Linear(in_features=8, ...)
        label = f"{label}({t.extra_repr()})"
    label = " ".join(label.split())
    return label if len(label) <= _MAX_LABEL else label[: _MAX_LABEL - 1] + "…"


def _params(t: Transform) -> int:
    if _is_layer(t):
        return sum(p.numel() for p in t.parameters())
    return sum(_params(c) for c in t._wb_children())


def _is_layer(t: Transform) -> bool:
    import torch

    return isinstance(t, torch.nn.Module)


# --- text --------------------------------------------------------------------------------------

_SYMBOLS = {"rollout": "+", "parallel": "/", "map": "~", "compose": ">>", "try": "Try", "if": "if"}


def to_text(t: Transform) -> str:
    """A readable tree, one step a line; ``batch``/``unbatch`` are drawn as stage rules."""
    node = describe(t)
    head = node["label"] if node["name"] else node["kind"]
    summary = [head]
    if node["children"]:
        n = len(node["children"])
        unit = "step" if node["kind"] == "compose" else "branch"
        summary.append(f"{n} {unit}" + ("" if n == 1 else ("s" if unit == "step" else "es")))
    if node["params"]:
        summary.append(f"{node['params']:,} params")
    lines = [" · ".join(summary)]
    _text_children(node, "", lines)
    if not node["children"]:
        return lines[0] if node["kind"] == "step" else node["label"]
    return "\n".join(lines)


def _text_children(node: dict[str, Any], indent: str, lines: list[str]) -> None:
    children = node["children"]
    for i, child in enumerate(children):
        last = i == len(children) - 1
        branch = "└─ " if last else "├─ "
        if child["kind"] in ("batch", "unbatch"):
            lines.append(f"{indent}{branch}══ {child['label']} ══")
            continue
        text = f"[{i}] {child['label']}"
        if child["children"] and not child["name"]:
            text = f"[{i}] {_SYMBOLS.get(child['kind'], child['kind'])} {child['label']}"
        if child["params"]:
            text += f"  ({child['params']:,} params)"
        lines.append(indent + branch + text)
        if child["children"]:
            _text_children(child, indent + ("   " if last else "│  "), lines)


# --- HTML ----------------------------------------------------------------------------------------

_STAGE_COLOURS = {"preprocess": "#e8f1fb", "forward": "#fdf0e0", "postprocess": "#e9f7ec"}


def to_html(t: Transform) -> str:
    """A nested list with steps tinted by stage, for notebooks that do not have the renderer."""
    node = describe(t)
    legend = " ".join(
        f'<span style="background:{c};padding:0 4px;border-radius:3px">{s}</span>'
        for s, c in _STAGE_COLOURS.items()
    )
    body = _html_node(node, None)
    return (f'<div class="workbench-pipeline" style="font-family:monospace;font-size:12px">'
            f"{body}<div style=\"margin-top:4px;color:#666\">stages: {legend}</div></div>")


def _html_node(node: dict[str, Any], index: int | None) -> str:
    prefix = f"[{index}] " if index is not None else ""
    if node["kind"] in ("batch", "unbatch"):
        return f'<div style="border-top:2px solid #999;margin:2px 0;color:#555">{html.escape(node["label"])}</div>'
    label = html.escape(prefix + node["label"])
    params = f' <span style="color:#888">({node["params"]:,} params)</span>' if node["params"] else ""
    style = f'background:{_STAGE_COLOURS[node["stage"]]};padding:1px 4px;border-radius:3px'
    if not node["children"]:
        return f'<div style="{style};margin:1px 0">{label}{params}</div>'
    symbol = html.escape(_SYMBOLS.get(node["kind"], node["kind"]))
    children = "".join(_html_node(c, i) for i, c in enumerate(node["children"]))
    return (f'<details open style="margin:1px 0"><summary style="{style}">{label} '
            f'<span style="color:#888">{symbol}</span>{params}</summary>'
            f'<div style="margin-left:14px;border-left:1px solid #ccc;padding-left:6px">{children}</div></details>')


def mimebundle(t: Transform) -> dict[str, Any]:
    """Text, HTML and the JSON description, for Jupyter's rich display."""
    return {
        "text/plain": to_text(t),
        "text/html": to_html(t),
        MIME_TYPE: {"version": 1, "root": describe(t)},
    }
