"""The pipeline algebra: the ``Transform`` base class and the ways transforms combine.

A pipeline is a tree of transforms. Leaves are single steps (a wrapped function, callable class or
torch layer, see :mod:`workbench.transform`); inner nodes combine them:

========================  =====================  ==================================
expression                node                   meaning on input ``x``
========================  =====================  ==================================
``a >> b``                :class:`Compose`       ``b(a(x))``
``a + b``                 :class:`Rollout`       ``(a(x), b(x))``
``a / b``                 :class:`Parallel`      ``(a(x[0]), b(x[1]))``
``~a``                    :class:`Map`           ``[a(e) for e in x]``
``a - "name"``            named copy             ``pl["name"]`` finds it
========================  =====================  ==================================

The tuples of ``+`` and ``/`` are named tuples whose fields are the branch names (``out_0``...
for anonymous branches), see :func:`output_type`.

``batch`` and ``unbatch`` split a pipeline into three stages (per-item preprocessing, the batched
forward pass, per-item postprocessing); :mod:`workbench.apply` runs them. A pipeline without
``batch`` starts in the forward stage.

>>> from workbench import transform, batch, unbatch
>>> double = transform(lambda x: 2 * x)
>>> pl = double >> (double - "twice") + transform(str)
>>> out = pl(3)
>>> out, out.twice, out == (12, "6")
(Outputs(twice=12, out_1='6'), 12, True)
"""

from __future__ import annotations

import collections
import copy
import copyreg
import itertools
import keyword
import sys
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Iterator, Literal, NamedTuple, Sequence

from torch import Tensor as _Tensor

from .collate import collate, pad_collate, to_device, uncollate
from .mode import current_mode

__all__ = [
    "Transform",
    "Compose",
    "Rollout",
    "Parallel",
    "Map",
    "Stages",
    "Batch",
    "Unbatch",
    "batch",
    "unbatch",
    "Identity",
    "identity",
    "IfMode",
    "IfTrain",
    "IfEval",
    "IfInfer",
    "Try",
    "Device",
    "output_type",
    "step_name",
]

PREPROCESS, FORWARD, POSTPROCESS = 0, 1, 2
STAGE_NAMES = ("preprocess", "forward", "postprocess")


class Stages(NamedTuple):
    """The three stages of a pipeline, each itself a pipeline (``identity`` when empty)."""

    preprocess: "Transform"
    forward: "Transform"
    postprocess: "Transform"


class _computed:
    """A read-only attribute computed on access that an instance attribute of the same name can shadow.

    Transform is also mixed into user classes (callable classes, torch layers); a user attribute
    called ``stages`` or ``device`` must keep working, so these are non-data descriptors.
    """

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        state = obj.__dict__
        if "_modules" in state:  # a torch layer: its own submodule, parameter or buffer of this name wins
            for table in ("_modules", "_parameters", "_buffers"):
                found = state.get(table, {})
                if self.name in found:
                    return found[self.name]
        return self.fn(obj)


def step_name(step: "Transform") -> str | None:
    """The name given to ``step`` with ``step - "name"``; ``None`` for a step without one.

    A function rather than an attribute, so that it never collides with the attributes of the user
    classes and layers that :func:`workbench.transform` mixes ``Transform`` into.

    >>> from workbench import transform
    >>> inc = transform(lambda x: x + 1)
    >>> step_name(inc - "inc"), step_name(inc)
    ('inc', None)
    """
    if not isinstance(step, Transform):
        raise TypeError(f"step_name needs a workbench step or pipeline, got {type(step).__name__}")
    return step._wb_name


class Transform:
    """Base of every pipeline step and pipeline.

    Subclasses implement ``__call__(x)`` for one input (composites) or are user classes mixed with
    this one by :func:`workbench.transform`. Everything the algebra, the apply methods and the
    displays need is here; internal names carry a ``_wb_`` prefix so that they stay out of the way
    of user classes.
    """

    _wb_name: str | None = None
    _wb_varname: str | None = None
    _wb_origin: tuple[int, ...] | None = None

    def __copy__(self) -> "Transform":
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    # --- the algebra -------------------------------------------------------------------------

    def __rshift__(self, other: Any) -> "Compose":
        return Compose._join(self, _as_transform(other, ">>"))

    def __rrshift__(self, other: Any) -> "Compose":
        return Compose._join(_as_transform(other, ">>"), self)

    def __add__(self, other: Any) -> "Rollout":
        return Rollout._join(self, _as_transform(other, "+"))

    def __radd__(self, other: Any) -> "Rollout":
        return Rollout._join(_as_transform(other, "+"), self)

    def __truediv__(self, other: Any) -> "Parallel":
        return Parallel._join(self, _as_transform(other, "/"))

    def __rtruediv__(self, other: Any) -> "Parallel":
        return Parallel._join(_as_transform(other, "/"), self)

    def __invert__(self) -> "Map":
        _name_by_variable([self])
        return Map(self)

    def __sub__(self, name: Any) -> "Transform":
        if not isinstance(name, str):
            return NotImplemented
        named = copy.copy(self)
        named._wb_name = name
        return named

    # --- names -------------------------------------------------------------------------------

    def _wb_lookup_name(self) -> str | None:
        """The name ``pl[name]`` finds this step by: the given name, else the variable it was defined as."""
        return self._wb_name or self._wb_varname

    def _wb_with_varname(self, name: str) -> "Transform":
        """Set the default (variable) name; bundles use it to restore the name a step had when saved."""
        self._wb_varname = name
        return self

    # --- applying ----------------------------------------------------------------------------

    def _wb_callable(self) -> Callable[[Any], Any]:
        """A plain callable computing this step on one input; composites cache these for speed."""
        return self.__call__  # type: ignore[attr-defined]

    def _wb_entry(self) -> Callable[[Any], Any]:
        """What ``infer_apply`` runs: :meth:`_wb_callable`, except that ``unbatch`` without ``batch`` is skipped."""
        return self._wb_callable()

    def infer_apply(self, x: Any) -> Any:
        """Apply to one item: no grad, layers in eval mode, stages run back to back.

        >>> pl.infer_apply(item)  # doctest: +SKIP
        """
        return _apply.infer_apply(self, x)

    def eval_apply(self, xs: Any, *, batch_size: int = 64, num_workers: int = 0,
                   progress: bool = False, **loader_options: Any) -> "Iterator[Any]":
        """Apply to many items: an iterator (with ``len``) of outputs; no grad, eval mode.

        Preprocessing runs per item inside a ``torch.utils.data.DataLoader`` (``num_workers``,
        ``shuffle`` and other loader options pass through), the forward stage per batch and
        postprocessing per item. Without ``unbatch`` the iterator yields batches.
        """
        return _apply.eval_apply(self, xs, batch_size=batch_size, num_workers=num_workers,
                          progress=progress, **loader_options)

    def train_apply(self, xs: Any, *, batch_size: int = 64, shuffle: bool = True, num_workers: int = 0,
                    progress: bool = False, **loader_options: Any) -> "Iterator[Any]":
        """Like :meth:`eval_apply` in train mode with grad enabled, for training loops."""
        return _apply.train_apply(self, xs, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                           progress=progress, **loader_options)

    # --- structure -----------------------------------------------------------------------------

    def _wb_children(self) -> Sequence["Transform"]:
        return ()

    def _wb_title(self) -> str:
        """A short human name: the given name, else what the step wraps."""
        return self._wb_name or self._wb_kind()

    def _wb_kind(self) -> str:
        return type(self).__name__

    def _wb_walk(self) -> Iterator["Transform"]:
        """This transform and every transform inside it, depth first."""
        yield self
        for child in self._wb_children():
            yield from child._wb_walk()

    def _wb_markers(self) -> tuple[bool, bool]:
        """Whether this pipeline holds a ``batch`` marker, and whether it holds an ``unbatch`` marker."""
        found = [False, False]
        for t in self._wb_walk():
            if isinstance(t, Batch):
                found[0] = True
            elif isinstance(t, Unbatch):
                found[1] = True
        return found[0], found[1]

    def _wb_batch_marker(self) -> "tuple[tuple[int, ...], Batch] | None":
        """Where this pipeline's batch marker is (its step path) and the marker, or ``None``."""

        def find(t: Transform, path: tuple[int, ...]) -> "tuple[tuple[int, ...], Batch] | None":
            if isinstance(t, Batch):
                return path, t
            for i, child in enumerate(t._wb_children()):
                found = find(child, path + (i,))
                if found is not None:
                    return found
            return None

        return find(self, ())

    def _wb_has_markers(self) -> bool:
        return any(self._wb_markers())

    def _wb_entry_stage(self) -> int:
        """The stage the input enters in: preprocess when there is a ``batch``, else forward.

        A pipeline without ``batch`` has no per-item preprocessing: with no markers at all it is all
        forward stage, and with only ``unbatch`` the steps before it are forward and those after it
        postprocess.
        """
        return PREPROCESS if self._wb_markers()[0] else FORWARD

    def _wb_split(self, start: int, keep: bool = False) -> tuple[list["Transform | None"], int]:
        """Split into per-stage parts, entering in stage ``start``; returns (parts, end stage).

        With ``keep`` the markers stay in the parts (``batch`` ends the preprocess part, ``unbatch``
        starts the postprocess part), as :attr:`stages` shows them; without, the parts are what
        :mod:`workbench.apply` runs between its own collating and splitting.
        """
        parts: list[Transform | None] = [None, None, None]
        parts[start] = self
        return parts, start

    def _wb_parts(self) -> tuple[list["Transform | None"], int]:
        """The marker-free stage parts from the entry stage, and the stage the pipeline ends in."""
        return self._wb_split(self._wb_entry_stage())

    @_computed
    def stages(self) -> Stages:
        """``Stages(preprocess, forward, postprocess)``, each a pipeline (``identity`` if empty).

        The stages keep their markers, so ``pre >> fwd >> post`` is the pipeline again:
        ``preprocess`` ends with ``batch`` and ``postprocess`` starts with ``unbatch``.
        """
        parts, _ = self._wb_split(self._wb_entry_stage(), keep=True)
        return Stages(*(_unwrap(p) if p is not None else identity for p in parts))

    def _wb_modules(self) -> list[Any]:
        """The torch layers among this pipeline's steps, each once."""
        import torch

        seen: dict[int, Any] = {}
        for t in self._wb_walk():
            if isinstance(t, torch.nn.Module):
                seen.setdefault(id(t), t)
        return list(seen.values())

    @_computed
    def layers(self) -> list[Any]:
        """Every torch layer that is a step of this pipeline, each once, in pipeline order.

        Layers inside layers are not listed separately: ``pl.layers`` are the steps, their
        submodules stay theirs.
        """
        return list(self._wb_modules())

    def parameters(self, recurse: bool = True) -> Iterator[Any]:
        """The parameters of every layer in the pipeline, each once: ``torch.optim.Adam(pl.parameters())``.

        A torch layer that is itself a step keeps ``torch.nn.Module.parameters``; on one layer both agree.
        """
        seen: set[int] = set()
        for module in self._wb_modules():
            for p in module.parameters(recurse):
                if id(p) not in seen:
                    seen.add(id(p))
                    yield p

    @_computed
    def device(self) -> "Device":
        """The device of the pipeline's first parameter or buffer; ``cpu`` when it has none.

        It compares equal to the ``torch.device`` and to its string: ``pl.device == "cpu"``.
        """
        tensor = self._wb_lead_tensor()
        return Device(tensor.device if tensor is not None else "cpu")

    @_computed
    def annotations(self) -> dict[str, Any]:
        """The names set with :func:`workbench.annotate` (``class_names``, ``feature_names``, ``vocab``),
        the pipeline's own over those of its steps; a new dict, empty when nothing is set.

        >>> annotate(pl, class_names=["neg", "pos"]).annotations  # doctest: +SKIP
        {'class_names': ['neg', 'pos']}
        """
        from .annotations import annotations_of

        return annotations_of(self)

    def _wb_lead_tensor(self) -> Any:
        """The first parameter (or buffer) as it is now, ``None`` when there is none; it sets the device."""
        for owner, table, key in self._wb_first_tensor():
            tensors = getattr(owner, table)
            try:
                tensor = tensors.get(key)
            except AttributeError:  # a TorchScript module's table has no .get
                tensor = tensors[key] if key in tensors else None
            if tensor is not None:
                return tensor
        return None

    def _wb_first_tensor(self) -> list[tuple[Any, str, str]]:
        """Where the first parameter (or buffer) lives: ``[(submodule, "_parameters", name)]`` or ``[]``.

        Looked up in the submodule's table on each use, so moved or replaced tensors are seen.
        """
        for table in ("_parameters", "_buffers"):
            for module in self._wb_modules():
                for sub in module.modules():
                    for key, tensor in getattr(sub, table).items():
                        if tensor is not None:
                            return [(sub, table, key)]
        return []

    def to(self, device: Any) -> "Transform":
        """Move every torch layer of the pipeline to ``device``; batches follow at apply time."""
        for module in self._wb_modules():
            module.to(device)
        return self

    # --- display -------------------------------------------------------------------------------

    def _repr_html_(self) -> str:
        from .display import to_html

        return to_html(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from .display import mimebundle

        return mimebundle(self)


@dataclass(frozen=True)
class _Shape:
    """What a kind of composite is, as the displays, ``workbench info``, the inspector and the
    JupyterLab diagram show it.

    - ``kind``: its name in :func:`workbench.display.describe` trees (``"compose"``, ``"rollout"``...);
    - ``symbol``: the operator or word shown beside it (``">>"``, ``"+"``, ``"if"``);
    - ``layout``: ``"column"`` when the children run one after another (the stage flows from one to
      the next; drawn top to bottom), ``"row"`` when they are branches side by side (each starts
      in the node's stage);
    - ``branches``: labels over the children in order (``("then", "else")``); empty: ``[0]``, ``[1]``...
      on a row, none on a column;
    - ``label``: what an unnamed node is called (``kind`` when empty);
    - ``repeats``: the children run once per element of the input (the trace keeps a list of
      their outputs).

    >>> Rollout._wb_shape.symbol, Try._wb_shape.branches
    ('+', ('try', 'except', 'else', 'finally'))
    """

    kind: str
    symbol: str
    layout: Literal["column", "row"]
    branches: tuple[str, ...] = ()
    label: str = ""
    repeats: bool = False

    def __post_init__(self) -> None:
        if self.layout not in ("column", "row"):
            raise ValueError(f"composite {self.kind!r}: layout must be 'column' or 'row', got {self.layout!r}")
        if self.kind in ("step", "batch", "unbatch"):
            raise ValueError(f"composite kind {self.kind!r} is taken by leaves and stage markers")


_ChildFns = Sequence[Callable[[Any], Any]]


class _Composite(Transform):
    """A transform made of others; holds them in an immutable tuple.

    The composite protocol: each kind of composite says on its class all that the rest of
    workbench needs to know about it, and nothing else keeps a table of composites.

    - ``_wb_shape`` (a :class:`_Shape`): kind, symbol, layout and branch labels, read by the text
      and HTML displays, the JSON for the JupyterLab diagram, ``workbench info`` and the inspector;
    - ``_wb_run(x, fns, note)``: how it computes from its children, child ``i`` running as
      ``fns[i]``; plain calls pass the children's cached callables, the inspector's trace passes
      callables that record each child's output. ``note``, when given, is told which branch ran
      or what was caught. Errors get the failing child's position with :func:`_annotate`;
    - ``_wb_arguments()``: ``(args, kwargs)`` that make the node again as ``type(node)(*args,
      **kwargs)``, which bundles write as source.

    A new kind of composite is one subclass defining these three (``tests/test_composites.py``
    defines one and checks every consumer shows, traces and describes it).
    """

    _wb_shape: ClassVar[_Shape]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__name__.startswith("_"):  # a shared base (such as _Branching), not a kind of its own
            return
        if not isinstance(getattr(cls, "_wb_shape", None), _Shape):
            raise TypeError(f"composite {cls.__name__} must declare _wb_shape = _Shape(kind, symbol, layout, ...)")
        if cls._wb_run is _Composite._wb_run:
            raise TypeError(f"composite {cls.__name__} must say how it runs its children: define _wb_run(x, fns, note)")

    def __init__(self, children: Sequence[Transform]):
        self._children = tuple(children)
        self._fns: list[Callable[[Any], Any]] | None = None

    @classmethod
    def _join(cls, left: Transform, right: Transform) -> Any:
        """``left OP right``, flattening unnamed nodes of the same kind so ``a >> b >> c`` has 3 steps."""
        items: list[Transform] = []
        for side in (left, right):
            if type(side) is cls and side._wb_name is None:
                items.extend(side._children)
            else:
                items.append(side)
        _name_by_variable(items)
        return cls(items)

    def __call__(self, x: Any) -> Any:
        return (self.__dict__.get("_wb_entry_fn") or self._wb_entry())(x)

    def _call(self, x: Any) -> Any:
        return self._wb_run(x, self._fns or self._fns_cached())

    def _wb_run(self, x: Any, fns: _ChildFns, note: Callable[[str], None] | None = None) -> Any:
        """This node's output for ``x``, running child ``i`` as ``fns[i]`` (see the class docstring)."""
        raise NotImplementedError(f"{type(self).__name__} does not say how it runs its children (_wb_run)")

    def _wb_arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``(args, kwargs)`` making this node again: ``type(self)(*args, **kwargs)``."""
        return (list(self._children),), {}

    def _wb_label(self) -> str:
        """What the node is called when it has no name."""
        return self._wb_shape.label or self._wb_shape.kind

    def _wb_describe(self) -> dict[str, Any]:
        """Fields this kind adds to its :func:`workbench.display.describe` node (``IfMode``: its mode)."""
        return {}

    def _wb_callable(self) -> Callable[[Any], Any]:
        return self._call

    def _wb_entry(self) -> Callable[[Any], Any]:
        entry = self.__dict__.get("_wb_entry_fn")
        if entry is None:
            has_batch, has_unbatch = self._wb_markers()
            if has_batch or has_unbatch:
                self._wb_parts()  # a misplaced marker is an error before anything runs, as in the other modes
            if has_unbatch and not has_batch:
                # Nothing was batched, so there is nothing to split: run the stages without the marker.
                (_, fwd, post), _ = self._wb_parts()
                steps = [p._wb_callable() for p in (fwd, post) if p is not None]
                entry = steps[0] if len(steps) == 1 else _chain(steps)
            else:
                entry = self._call
            self.__dict__["_wb_entry_fn"] = entry
        return entry

    def _fns_cached(self) -> list[Callable[[Any], Any]]:
        if self._fns is None:
            self._fns = [c._wb_callable() for c in self._children]
        return self._fns

    def _wb_children(self) -> Sequence[Transform]:
        return self._children

    def _wb_markers(self) -> tuple[bool, bool]:
        cached = self.__dict__.get("_wb_markers_cache")
        if cached is None:
            cached = self.__dict__["_wb_markers_cache"] = super()._wb_markers()
        return cached

    def _wb_modules(self) -> list[Any]:
        # Children never change, so the walk is done once (``infer_apply`` asks on every call).
        cached = self.__dict__.get("_wb_modules_cache")
        if cached is None:
            cached = self.__dict__["_wb_modules_cache"] = super()._wb_modules()
        return cached

    def _wb_first_tensor(self) -> list[tuple[Any, str, str]]:
        cached = self.__dict__.get("_wb_first_tensor_cache")
        if not cached:  # an empty answer is looked for again: layers may gain parameters later
            cached = self.__dict__["_wb_first_tensor_cache"] = super()._wb_first_tensor()
        return cached

    def __getstate__(self) -> dict[str, Any]:
        # Caches hold callables bound to this object and derived values; they are rebuilt on first use.
        return {k: (None if k == "_fns" else v) for k, v in self.__dict__.items() if not k.endswith(("_cache", "_fn"))}

    def __copy__(self) -> "Transform":
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__getstate__())
        return new

    def __len__(self) -> int:
        return len(self._children)

    def __getitem__(self, key: int | slice | str) -> Transform:
        if isinstance(key, str):
            for t in self._wb_walk():
                if t._wb_lookup_name() == key:
                    return t
            names = sorted({n for t in self._wb_walk() if (n := t._wb_lookup_name())})
            raise KeyError(f"no step named {key!r} in this pipeline; named steps: {names or 'none'}")
        if isinstance(key, slice):
            return type(self)(self._children[key])
        return self._children[key]

    def __iter__(self) -> Iterator[Transform]:
        return iter(self._children)

    def __repr__(self) -> str:
        from .display import to_text

        return to_text(self)

    def _wb_piece(self, node: "_Composite") -> "_Composite":
        """``node``, a stage's part of this node, carrying this node's name."""
        if self._wb_name is not None:
            node._wb_name = self._wb_name
        return node


class Compose(_Composite):
    """``a >> b >> c``: each step's output is the next step's input."""

    _wb_shape = _Shape("compose", ">>", "column")

    def __init__(self, steps: Sequence[Transform], origin: Sequence[int] | None = None):
        super().__init__(steps)
        if origin is not None:
            self._wb_origin = tuple(origin)

    def _wb_run(self, x: Any, fns: _ChildFns, note: Callable[[str], None] | None = None) -> Any:
        i = 0
        try:
            for f in fns:
                x = f(x)
                i += 1
        except Exception as exc:
            _annotate(exc, self, i)
            raise
        return x

    def _wb_split(self, start: int, keep: bool = False) -> tuple[list[Transform | None], int]:
        if not self._wb_has_markers():
            return super()._wb_split(start, keep)
        parts: list[list[Transform]] = [[], [], []]
        origins: list[list[int]] = [[], [], []]
        stage = start
        for i, child in enumerate(self._children):
            child_parts, stage_after = child._wb_split(stage, keep)
            for s, part in enumerate(child_parts):
                if part is None:
                    continue
                if keep and type(part) is Compose and part._wb_name is None:
                    parts[s].extend(part._children)  # an unnamed sub-pipeline's piece joins this one
                    origins[s].extend([i] * len(part._children))
                else:
                    parts[s].append(part)
                    origins[s].append(i)
            stage = stage_after
        # Each stage keeps the positions its steps had here, so errors name the step as the user sees it.
        return [self._wb_piece(Compose(p, origin=o)) if p else None for p, o in zip(parts, origins)], stage


class _Branching(_Composite):
    """Shared by Rollout and Parallel: several branches whose results form a named tuple.

    The tuple's fields are the branch names (``pl[name]`` names, see :meth:`Transform._wb_lookup_name`),
    ``out_0``, ``out_1``... for anonymous branches, so ``out.label`` works while ``out`` still equals and
    unpacks as the plain tuple.
    """

    def __init__(self, children: Sequence[Transform], fields: Sequence[str] | None = None):
        super().__init__(children)
        self._wb_fields = tuple(fields) if fields is not None else _branch_fields(self._children)
        if len(self._wb_fields) != len(self._children):
            raise ValueError(f"{len(self._children)} branches need {len(self._children)} field names, "
                             f"got {list(self._wb_fields)}")

    def _wb_arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        custom = self._wb_fields != _branch_fields(self._children)
        return (list(self._children),), ({"fields": list(self._wb_fields)} if custom else {})

    def _wb_gather(self, fns: _ChildFns, inputs: Iterable[Any]) -> tuple[Any, ...]:
        """The output tuple of branch ``i`` run as ``fns[i]`` on input ``i``; a failure names the branch."""
        out = []
        try:
            for f, x in zip(fns, inputs):
                out.append(f(x))
        except Exception as exc:
            _annotate(exc, self, len(out))
            raise
        return self._wb_pack(out)

    def _wb_pack(self, values: list[Any]) -> tuple[Any, ...]:
        """The output tuple of this node from its branches' values."""
        make = self.__dict__.get("_wb_make_fn")
        if make is None:
            make = self.__dict__["_wb_make_fn"] = output_type(self._wb_fields)._make
        return make(values)

    def _wb_split(self, start: int, keep: bool = False) -> tuple[list[Transform | None], int]:
        if not self._wb_has_markers():
            return super()._wb_split(start, keep)
        splits = [c._wb_split(start, keep) for c in self._children]
        ends = {end for _, end in splits}
        if len(ends) > 1:
            raise ValueError(
                f"the branches of {self._wb_title()!r} disagree on batch/unbatch: each branch must reach "
                f"the same stage ({', '.join(STAGE_NAMES[e] for _, e in splits)})"
            )
        end = ends.pop()
        parts: list[Transform | None] = [None, None, None]
        for s in range(start, end + 1):
            branch_parts = [p[s] if p[s] is not None else identity for p, _ in splits]
            if all(p is identity for p in branch_parts):
                continue
            # Only the entry stage sees the branching input; later stages see a tuple, one per branch.
            kind = type(self) if s == start else Parallel
            parts[s] = self._wb_piece(kind(branch_parts, fields=self._wb_fields))
        return parts, end


class Rollout(_Branching):
    """``a + b``: every branch gets the same input; the output is the tuple of their outputs."""

    _wb_shape = _Shape("rollout", "+", "row")

    def _wb_run(self, x: Any, fns: _ChildFns, note: Callable[[str], None] | None = None) -> tuple[Any, ...]:
        return self._wb_gather(fns, itertools.repeat(x))


class Parallel(_Branching):
    """``a / b``: branch ``i`` gets element ``i`` of the input tuple."""

    _wb_shape = _Shape("parallel", "/", "row")

    def _wb_run(self, x: Any, fns: _ChildFns, note: Callable[[str], None] | None = None) -> tuple[Any, ...]:
        try:
            n = len(x)
        except TypeError:
            n = -1
        if n != len(fns):
            raise TypeError(
                f"parallel step {self._wb_title()!r} has {len(fns)} branches and needs a tuple of "
                f"{len(fns)} values; got {type(x).__name__}" + (f" of length {n}" if n >= 0 else "")
            )
        return self._wb_gather(fns, x)


class _Sealed(_Composite):
    """A composite whose children have fixed roles: it cannot be sliced, and holds no stage markers."""

    def __getitem__(self, key: Any) -> Transform:
        if isinstance(key, slice):
            raise TypeError(f"a {self._wb_kind()} step cannot be sliced; index its parts instead")
        return super().__getitem__(key)

    def _wb_split(self, start: int, keep: bool = False) -> tuple[list[Transform | None], int]:
        if self._wb_has_markers():
            raise ValueError(f"batch/unbatch inside the {self._wb_kind()} step {self._wb_title()!r} is not "
                             "supported: put it inside one stage")
        return super()._wb_split(start, keep)


class Map(_Sealed):
    """``~a``: ``a`` applied to each element of the input; the output is a list."""

    _wb_shape = _Shape("map", "~", "column", repeats=True)

    def __init__(self, inner: Transform):
        super().__init__([inner])

    def _wb_arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self._children[0],), {}

    def _wb_run(self, xs: Any, fns: _ChildFns, note: Callable[[str], None] | None = None) -> list[Any]:
        f = fns[0]
        try:
            return [f(x) for x in xs]
        except Exception as exc:
            _annotate(exc, self, 0)
            raise


def _chain(steps: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    def run(x: Any) -> Any:
        for step in steps:
            x = step(x)
        return x

    return run


def _unwrap(part: Transform) -> Transform:
    """A stage that is one step is that step, not a one-step pipeline (unless it carries a name)."""
    if type(part) is Compose and part._wb_name is None and len(part._children) == 1:
        return part._children[0]
    return part


# --- named outputs ----------------------------------------------------------------------------------

_OUTPUT_TYPES: dict[tuple[str, ...], type] = {}


def output_type(fields: Sequence[str]) -> type:
    """The named tuple type of ``+``/``/`` outputs with these fields; one type per field tuple.

    Instances pickle as their field names and values (not by a reference to the class), so they
    cross DataLoader worker processes and ``torch.save`` files and come back as this same type.

    >>> out = output_type(("label", "score"))("cat", 0.9)
    >>> out.label, out == ("cat", 0.9)
    ('cat', True)
    """
    key = tuple(fields)
    cls = _OUTPUT_TYPES.get(key)
    if cls is None:
        cls = collections.namedtuple("Outputs", key, module=__name__)  # type: ignore[misc]
        cls.__reduce__ = _reduce_output  # type: ignore[assignment]
        cls.__copy__ = lambda self: self  # type: ignore[attr-defined]
        # All branches anonymous: the names carry nothing, so encoders may treat it as a plain tuple.
        cls._wb_anonymous = key == tuple(f"out_{i}" for i in range(len(key)))  # type: ignore[attr-defined]
        _OUTPUT_TYPES[key] = cls
    return cls


def _reduce_output(self: tuple[Any, ...]) -> Any:
    return (_outputs, (self._fields, tuple(self)))  # type: ignore[attr-defined]


def _outputs(fields: Sequence[str], values: Sequence[Any]) -> tuple[Any, ...]:
    return output_type(fields)._make(values)  # type: ignore[attr-defined]


def _branch_fields(children: Sequence[Transform]) -> tuple[str, ...]:
    """Field names for branches: their names where usable as fields, else ``out_<position>``."""
    names = [c._wb_lookup_name() for c in children]
    counts = collections.Counter(names)
    fields = [n if n and n.isidentifier() and not keyword.iskeyword(n) and not n.startswith("_")
              and counts[n] == 1 else f"out_{i}" for i, n in enumerate(names)]
    if len(set(fields)) != len(fields):  # a branch explicitly named like another's position
        return tuple(f"out_{i}" for i in range(len(fields)))
    return tuple(fields)


def _name_by_variable(steps: Sequence[Transform]) -> None:
    """Give unnamed leaf steps the name of the variable they are bound to where the pipeline is built.

    Looked up in the globals of the code combining them (a notebook, a script, a module), so
    ``plus_one >> model`` names its steps ``plus_one`` and ``model``; a function step defined at
    module level is also named after its function. The first binding wins and sticks; ``- "name"``
    always wins over it.
    """
    pending = [t for t in steps if t._wb_name is None and t._wb_varname is None and not isinstance(t, _Composite)
               and t is not identity and not isinstance(t, _Marker)]
    if not pending:
        return
    frame = sys._getframe(1)
    while frame is not None and _is_own_module(frame.f_globals.get("__name__")):
        frame = frame.f_back
    namespace = frame.f_globals if frame is not None else {}
    for t in pending:
        name = _variable_of(t, namespace)
        if name is not None:
            t._wb_varname = name


def _is_own_module(name: Any) -> bool:
    return isinstance(name, str) and (name == "workbench" or name.startswith("workbench."))


def _variable_of(t: Transform, namespace: dict[str, Any]) -> str | None:
    for name, value in namespace.items():
        if value is t and not name.startswith("_"):
            return name
    fn = t.__dict__.get("fn")
    name = getattr(fn, "__name__", None)
    scope = getattr(fn, "__globals__", None)
    if isinstance(name, str) and scope is not None and not name.startswith("_"):
        bound = scope.get(name)
        if bound is t or bound is fn:
            return name
    return None


class Device(str):
    """Where a pipeline's layers are: equal to the ``torch.device`` and to its string form.

    >>> d = Device("cpu")
    >>> d == "cpu", d == __import__("torch").device("cpu"), d.type
    (True, True, 'cpu')
    """

    def __new__(cls, device: Any) -> "Device":
        return super().__new__(cls, str(device))

    def __eq__(self, other: Any) -> bool:
        import torch

        if isinstance(other, (str, torch.device)):
            try:
                return torch.device(str(self)) == torch.device(other)
            except (RuntimeError, ValueError, TypeError):
                return False
        return NotImplemented

    def __ne__(self, other: Any) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = str.__hash__

    @property
    def type(self) -> str:
        """``"cpu"``, ``"cuda"``, ``"mps"``... as ``torch.device.type``."""
        return self.split(":")[0]

    @property
    def index(self) -> int | None:
        """The device index (``0`` in ``"cuda:0"``), ``None`` when not given, as ``torch.device.index``."""
        _, _, index = self.partition(":")
        return int(index) if index else None

    def __repr__(self) -> str:
        return f"device(type={self.type!r}" + (f", index={self.index})" if self.index is not None else ")")


# --- stage markers -----------------------------------------------------------------------------


class _Marker(Transform):
    """A stage boundary. Called directly it collates (``batch``) or splits (``unbatch``) one item."""

    _stage_from: int
    _stage_to: int

    def _wb_split(self, start: int, keep: bool = False) -> tuple[list[Transform | None], int]:
        if start != self._stage_from:
            raise ValueError(
                f"'{self._wb_kind()}' cannot come in the {STAGE_NAMES[start]} stage: a pipeline has at most "
                "one batch, followed by at most one unbatch"
            )
        parts: list[Transform | None] = [None, None, None]
        if keep:  # batch ends the preprocess stage, unbatch starts the postprocess stage
            parts[PREPROCESS if isinstance(self, Batch) else POSTPROCESS] = self
        return parts, self._stage_to

    def __repr__(self) -> str:
        return self._wb_kind()

    def __reduce__(self) -> Any:
        if self is batch or self is unbatch:
            return self._wb_kind()  # the module's own marker, by reference
        return (copyreg.__newobj__, (type(self),), self.__dict__ or None)

    def __copy__(self) -> "_Marker":
        raise TypeError(f"'{self._wb_kind()}' is a marker and cannot be named")


class Batch(_Marker):
    """Everything before ``batch`` runs per item in a DataLoader; the items are then collated.

    ``batch`` stacks tensors (torch's ``default_collate`` otherwise). Two variants are batch markers
    too, and stand wherever ``batch`` can (stages, ``unbatch``, saving, display):

    - ``batch.pad(value=0)`` pads tensors of different sizes (token ids of varying length; also
      inside tuples and dicts) with ``value`` to the largest in the batch, see
      :func:`workbench.collate.pad_collate`;
    - ``batch.collate(fn)`` collates with any function ``fn(list_of_items) -> batch``.

    >>> import torch
    >>> from workbench import transform, batch
    >>> pl = transform(torch.tensor) >> batch.pad(value=0)
    >>> list(pl.eval_apply([[1, 2, 3], [4]]))[0].tolist()
    [[1, 2, 3], [4, 0, 0]]
    """

    _stage_from, _stage_to = PREPROCESS, FORWARD

    def __init__(self, collate_fn: Callable[[list[Any]], Any] | None = None, *, padding: Any = None):
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"batch.collate(fn) needs a function of the list of items, got {type(collate_fn).__name__}")
        self._wb_collate_fn = collate_fn
        self._wb_padding = padding

    def pad(self, value: float = 0) -> "Batch":
        """A batch marker padding variable-length tensors with ``value`` to the longest in the batch."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"batch.pad(value=...) needs a number, got {value!r}")
        return Batch(padding=value)

    def collate(self, fn: Callable[[list[Any]], Any]) -> "Batch":
        """A batch marker collating the preprocessed items with ``fn(items) -> batch``."""
        return Batch(fn)

    def _wb_collate(self, items: list[Any]) -> Any:
        """The batch made of ``items`` (preprocessed outputs), on the CPU."""
        if self._wb_collate_fn is not None:
            return self._wb_collate_fn(items)
        if self._wb_padding is not None:
            return pad_collate(items, self._wb_padding)
        return collate(items)

    def __call__(self, x: Any) -> Any:
        return to_device(self._wb_collate([x]))

    def _wb_kind(self) -> str:
        if self._wb_collate_fn is not None:
            fn = self._wb_collate_fn
            return f"batch.collate({getattr(fn, '__qualname__', None) or type(fn).__name__})"
        if self._wb_padding is not None:
            return f"batch.pad({self._wb_padding!r})"
        return "batch"

    def __reduce__(self) -> Any:
        if self._wb_collate_fn is None and self._wb_padding is None:
            return super().__reduce__()  # the module's batch by reference, another plain one by value
        if self._wb_collate_fn is None:
            return (_batch_padding, (self._wb_padding,))
        import cloudpickle  # a notebook's collate function pickles by value (DataLoader workers by spawn)

        return (_batch_collating, (cloudpickle.dumps(self._wb_collate_fn),))


def _batch_padding(value: Any) -> Batch:
    return Batch(padding=value)


def _batch_collating(payload: bytes) -> Batch:
    import pickle

    return Batch(pickle.loads(payload))


class Unbatch(_Marker):
    """Everything after ``unbatch`` runs per item on the forward stage's split output.

    A pipeline with ``unbatch`` but no ``batch`` never batched anything, so there ``unbatch`` is
    the identity: ``(times_two >> unbatch).infer_apply(1) == 2``.
    """

    _stage_from, _stage_to = FORWARD, POSTPROCESS

    def __call__(self, x: Any) -> Any:
        if type(x) is _Tensor and x.dim() and x.shape[0] == 1:  # the common case, without the general walk
            return x.unbind(0)[0]
        items = uncollate(x)
        if len(items) != 1:
            raise ValueError(f"unbatch of a single item produced {len(items)} items")
        return items[0]

    def _wb_entry(self) -> Callable[[Any], Any]:
        return _identity

    def _wb_kind(self) -> str:
        return "unbatch"


batch = Batch()
unbatch = Unbatch()


class Identity(Transform):
    """Returns its input unchanged."""

    def __call__(self, x: Any) -> Any:
        return x

    def _wb_callable(self) -> Callable[[Any], Any]:
        return _identity

    def _wb_kind(self) -> str:
        return "identity"

    def __repr__(self) -> str:
        return self._wb_title()

    def __reduce__(self) -> Any:
        return "identity" if self._wb_name is None else (_named, (identity, self._wb_name))


def _identity(x: Any) -> Any:
    return x


def _named(t: Transform, name: str) -> Transform:
    return t - name


identity = Identity()


# --- control flow --------------------------------------------------------------------------------


class IfMode(_Sealed):
    """Run ``then`` when the apply mode is ``mode``, else ``else_`` (identity by default)."""

    _wb_shape = _Shape("if", "if", "row", ("then", "else"))
    mode = "infer"

    def __init__(self, then: Any, else_: Any = None):
        from .transform import transform

        super().__init__([transform(then), transform(else_) if else_ is not None else identity])

    def _wb_arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return tuple(self._children), {}

    def _wb_label(self) -> str:
        return f"If{self.mode.capitalize()}"

    def _wb_describe(self) -> dict[str, Any]:
        return {"mode": self.mode}

    def _wb_run(self, x: Any, fns: _ChildFns, note: Callable[[str], None] | None = None) -> Any:
        mode = current_mode()
        branch = 0 if mode == self.mode else 1
        if note is not None:
            note(f"{self._wb_shape.branches[branch]} branch (mode {mode!r})")
        try:
            return fns[branch](x)
        except Exception as exc:
            _annotate(exc, self, branch)
            raise


class IfTrain(IfMode):
    """``IfTrain(augment)``: ``augment`` only inside ``train_apply``."""

    mode = "train"


class IfEval(IfMode):
    """``IfEval(t, else_)``: ``t`` only inside ``eval_apply``."""

    mode = "eval"


class IfInfer(IfMode):
    """``IfInfer(t, else_)``: ``t`` only inside ``infer_apply`` (and direct calls)."""

    mode = "infer"


class Try(_Sealed):
    """``Try(t, catch, exceptions=Exception, else_=identity, finally_=identity)``: try/except as a step.

    The output is ``finally_(else_(t(x)))`` when ``t`` succeeds and ``finally_(catch(x))`` when it
    raises one of ``exceptions``; other exceptions propagate.

    >>> from workbench import Try, transform
    >>> safe_int = Try(transform(int), transform(lambda x: -1), ValueError)
    >>> safe_int("12"), safe_int("twelve")
    (12, -1)
    """

    _wb_shape = _Shape("try", "try", "row", ("try", "except", "else", "finally"), label="Try")

    def __init__(self, t: Any, catch: Any, exceptions: type[BaseException] | tuple[type[BaseException], ...] = Exception,
                 else_: Any = None, finally_: Any = None):
        from .transform import transform

        parts = [transform(t), transform(catch),
                 transform(else_) if else_ is not None else identity,
                 transform(finally_) if finally_ is not None else identity]
        super().__init__(parts)
        self.exceptions = exceptions

    def _wb_arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        t, catch, else_, finally_ = self._children
        return (t, catch, self.exceptions), {"else_": else_, "finally_": finally_}

    def _wb_run(self, x: Any, fns: _ChildFns, note: Callable[[str], None] | None = None) -> Any:
        t, catch, else_, finally_ = fns
        stage = 0
        try:
            try:
                out = t(x)
            except self.exceptions as caught:
                stage = 1
                if note is not None:
                    note(f"caught {type(caught).__name__}: {caught}")
                out = catch(x)
            else:
                stage = 2
                if note is not None:
                    note("no exception")
                out = else_(out)
            stage = 3
            return finally_(out)
        except Exception as exc:
            _annotate(exc, self, stage)
            raise


# --- errors ----------------------------------------------------------------------------------------

_NOTE_PREFIX = "workbench: "


def _annotate(exc: BaseException, node: _Composite, index: int) -> None:
    """Record that ``exc`` came out of child ``index`` of ``node``, and refresh the exception's note."""
    path = getattr(exc, "_wb_path", None)
    origin = node._wb_origin
    position = origin[index] if origin is not None else index
    try:
        if path is None:
            exc._wb_path = [position]  # type: ignore[attr-defined]
            exc._wb_step = node._children[index]._wb_title()  # type: ignore[attr-defined]
        else:
            path.insert(0, position)
    except AttributeError:  # exceptions without a __dict__ carry no annotation
        return
    refresh_note(exc)


def refresh_note(exc: BaseException) -> None:
    """Write the single workbench note of ``exc`` from its recorded step path and item."""
    path = getattr(exc, "_wb_path", None)
    item = getattr(exc, "_wb_item", None)
    parts = []
    if path is not None:
        where = "".join(f"[{i}]" for i in path)
        parts.append(f"in step {where} {exc._wb_step!r}")  # type: ignore[attr-defined]
    if item is not None:
        parts.append(f"on {item}")
    if not parts:
        return
    notes = [n for n in getattr(exc, "__notes__", []) if not n.startswith(_NOTE_PREFIX)]
    notes.append(_NOTE_PREFIX + " ".join(parts))
    exc.__notes__ = notes


def _as_transform(obj: Any, op: str) -> Transform:
    from .transform import transform

    if isinstance(obj, Transform):
        return obj
    if callable(obj):
        return transform(obj)
    raise TypeError(f"cannot combine a pipeline with {type(obj).__name__} using {op!r}: "
                    "expected a transform or a callable")


from . import apply as _apply  # noqa: E402  (apply builds on the classes above)
