"""Storing only the attributes of an object that the code reads, where that is exact.

When every use of a global in a copied definition is an attribute read (``wine.target_names[i]``),
a bundle may store just those attributes instead of the whole object (scikit-learn's ``Bunch`` of a
dataset, a configuration object). :func:`attributes_read` finds those attributes in the syntax tree;
:func:`plain_attributes` says whether storing only them keeps fidelity, and gives their values.

>>> class Dataset:
...     def __init__(self):
...         self.names, self.data = ["a", "b"], [[1, 2], [3, 4]]
>>> plain_attributes(Dataset(), {"names"})
{'names': ['a', 'b']}
"""

from __future__ import annotations

import ast
import enum
import re
import types
from typing import Any

from .naming import object_key
from .storage import is_array, is_frame, is_numpy_scalar

__all__ = ["attributes_read", "plain_attributes", "class_lookup"]

_NOT_FOUND = object()


def attributes_read(gname: str, uses: list[tuple[ast.Name, str]]) -> set[str] | None:
    """The attributes read from global ``gname`` when every use of it is ``gname.attr`` (a load); else None.

    ``uses`` are the global names of a definition (:func:`workbench.bundle.scope.global_names`), each
    node linked to its parent (``_wb_parent``).
    """
    attrs = set()
    for node, _ in uses:
        if node.id != gname:
            continue
        parent = getattr(node, "_wb_parent", None)
        if not (isinstance(parent, ast.Attribute) and parent.value is node and isinstance(parent.ctx, ast.Load)):
            return None
        attrs.add(parent.attr)
    return attrs or None


def plain_attributes(value: Any, attrs: set[str]) -> dict[str, Any] | None:
    """The values of ``attrs`` of ``value`` when each is plain data of the object; else None.

    Plain data is an entry of its instance ``__dict__`` that no data descriptor of its class shadows,
    or (for dict subclasses such as scikit-learn's ``Bunch``) a key that attribute access returns as
    is. Reading such an attribute has no side effect and gives the stored value, so a namespace with
    the same attributes computes the same. Modules, classes, functions, layers, tensors, arrays,
    frames, containers and objects that override ``__getattribute__`` are never narrowed.
    """
    import torch

    from ..pipeline import Transform

    cls = type(value)
    if not attrs or object_key(value)[0] == "literal" \
            or cls in (list, tuple, dict, set, frozenset) \
            or isinstance(value, (types.ModuleType, type, types.FunctionType, types.MethodType, Transform,
                                  torch.nn.Module, torch.Tensor, enum.Enum, re.Pattern)) \
            or is_array(value) or is_frame(value) or is_numpy_scalar(value) \
            or cls.__getattribute__ not in (object.__getattribute__, dict.__getattribute__):
        return None
    state = getattr(value, "__dict__", None)
    out = {}
    for attr in attrs:
        on_class = class_lookup(cls, attr)
        if isinstance(state, dict) and attr in state:
            if on_class is not None and (hasattr(type(on_class), "__set__") or hasattr(type(on_class), "__delete__")):
                return None
            out[attr] = state[attr]
        elif isinstance(value, dict) and on_class is None and attr in value \
                and "__getattr__" in dir(cls) and _getattr_or_not_found(value, attr) is value[attr]:
            out[attr] = value[attr]
        else:
            return None
    return out


def class_lookup(cls: type, name: str) -> Any:
    """``name`` as found on ``cls`` or its bases (no descriptor protocol), or None."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    return None


def _getattr_or_not_found(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name)
    except Exception:
        return _NOT_FOUND
