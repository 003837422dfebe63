"""How a pipeline shows itself: as text, as HTML, and as JSON for the JupyterLab renderer.

All three are drawn from one description, :func:`describe`, a tree of plain dicts::

    {"kind": "step" | "batch" | "unbatch" | "compose" | "rollout" | ...,  # a composite's _Shape.kind
     "label": "normalize",            # the step's name, or what it wraps
     "name": "normalize" | None,      # the name given with ``t - "name"``
     "type": "FunctionTransform",     # the Python class
     "stage": "preprocess" | "forward" | "postprocess",
     "params": 36,                    # trainable and frozen parameters of torch layers (0 otherwise)
     "children": [...]}

Composite nodes also carry what their class declares (:class:`workbench.pipeline._Shape`), so that
no reader keeps its own table of composites: ``"symbol"`` (``">>"``, ``"+"``...), ``"layout"``
(``"column"``: children one after another, ``"row"``: branches side by side) and ``"branches"``
(a label per child, ``[]`` on a column). ``if`` nodes add their ``"mode"``.

:data:`MIME_TYPE` bundles carry ``{"version": 1, "root": <that tree>}``.
"""

from __future__ import annotations

import html
from typing import Any

from ._text import shorten
from .pipeline import STAGE_NAMES, Batch, Transform, Unbatch, _Composite

__all__ = ["MIME_TYPE", "describe", "kind_of", "label_of", "to_text", "tree_text", "to_html", "mimebundle"]

MIME_TYPE = "application/vnd.workbench.pipeline+json"
_MAX_LABEL = 70


def describe(t: Transform, stage: int | None = None) -> dict[str, Any]:
    """The pipeline as a tree of plain dicts (see the module docstring).

    Stages start where the pipeline's input enters: preprocess when it has ``batch``, else forward.
    """
    node, _ = _describe(t, t._wb_entry_stage() if stage is None else stage)
    return node


def _describe(t: Transform, stage: int) -> tuple[dict[str, Any], int]:
    node: dict[str, Any] = {
        "kind": kind_of(t),
        "label": label_of(t),
        "name": t._wb_name,
        "type": type(t).__name__,
        "stage": STAGE_NAMES[stage],
        "params": _params(t),
        "children": [],
    }
    if isinstance(t, (Batch, Unbatch)):
        return node, t._stage_to
    end = stage
    if isinstance(t, _Composite):
        shape = t._wb_shape
        node.update(symbol=shape.symbol, layout=shape.layout, branches=_branch_labels(t), **t._wb_describe())
        for child in t._wb_children():
            # A column's stage flows from child to child; each branch of a row starts in the node's stage.
            child_node, child_end = _describe(child, end if shape.layout == "column" else stage)
            node["children"].append(child_node)
            end = max(end, child_end)
    return node, end


def kind_of(t: Transform) -> str:
    """``"batch"``, ``"unbatch"``, a composite's declared kind, else ``"step"``."""
    if isinstance(t, Batch):
        return "batch"
    if isinstance(t, Unbatch):
        return "unbatch"
    if isinstance(t, _Composite):
        return t._wb_shape.kind
    return "step"


def _branch_labels(t: _Composite) -> list[str]:
    """The label over each child: the declared ones, else ``[i]`` on a row and none on a column."""
    fixed = t._wb_shape.branches
    n = len(t._wb_children())
    if fixed:
        return [fixed[i] if i < len(fixed) else f"[{i}]" for i in range(n)]
    return [f"[{i}]" for i in range(n)] if t._wb_shape.layout == "row" else []


def label_of(t: Transform) -> str:
    """The step's name, else what a composite is called, else what the step wraps (shortened)."""
    if t._wb_name:
        return t._wb_name
    if isinstance(t, _Composite):
        return t._wb_label()
    label = t._wb_kind()
    if _is_layer(t):  # Linear(in_features=8, ...)
        label = f"{label}({t.extra_repr()})"
    label = " ".join(label.split())
    return shorten(label, _MAX_LABEL)


def _params(t: Transform) -> int:
    if _is_layer(t):
        return sum(p.numel() for p in t.parameters())
    return sum(_params(c) for c in t._wb_children())


def _is_layer(t: Transform) -> bool:
    import torch

    return isinstance(t, torch.nn.Module)


# --- text --------------------------------------------------------------------------------------


def to_text(t: Transform) -> str:
    """A readable tree, one step a line; ``batch``/``unbatch`` are drawn as stage rules."""
    node = describe(t)
    head = node["label"] if node["name"] else node["kind"]
    summary = [head]
    if node["children"]:
        n = len(node["children"])
        unit = "step" if node.get("layout") == "column" else "branch"
        summary.append(f"{n} {unit}" + ("" if n == 1 else ("s" if unit == "step" else "es")))
    if node["params"]:
        summary.append(f"{node['params']:,} params")
    if not node["children"]:
        return summary[0] if node["kind"] == "step" else node["label"]
    return "\n".join([" · ".join(summary), *tree_text(node)])


def tree_text(node: dict[str, Any], *, stages: bool = False, indent: str = "") -> list[str]:
    """The lines drawing the children of a :func:`describe` node, one step a line, stage markers as
    rules; ``stages`` ends each line with the step's stage. ``workbench info`` draws stored trees with it.
    """
    lines: list[str] = []
    children = node.get("children") or []
    for i, child in enumerate(children):
        last = i == len(children) - 1
        branch = "└─ " if last else "├─ "
        if child.get("kind") in ("batch", "unbatch"):
            lines.append(f"{indent}{branch}══ {child.get('label') or child['kind']} ══")
            continue
        text = f"[{i}] {child.get('label', '?')}"
        if child.get("children") and not child.get("name"):  # trees stored before nodes had symbols show the kind
            text = f"[{i}] {child.get('symbol') or child.get('kind')} {child.get('label', '?')}"
        if child.get("params"):
            text += f"  ({child['params']:,} params)"
        if stages:
            text += f"   [{child.get('stage', '')}]"
        lines.append(indent + branch + text)
        lines.extend(tree_text(child, stages=stages, indent=indent + ("   " if last else "│  ")))
    return lines


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
    symbol = html.escape(node["symbol"])
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
