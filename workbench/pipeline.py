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

``batch`` and ``unbatch`` split a pipeline into three stages (per-item preprocessing, the batched
forward pass, per-item postprocessing); :mod:`workbench.apply` runs them.

>>> from workbench import transform, batch, unbatch
>>> double = transform(lambda x: 2 * x)
>>> pl = double >> double + transform(str)
>>> pl(3)
(12, '6')
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterator, NamedTuple, Sequence

from torch import Tensor as _Tensor

from .collate import collate, to_device, uncollate
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
        return self.fn(obj)


class Transform:
    """Base of every pipeline step and pipeline.

    Subclasses implement ``__call__(x)`` for one input (composites) or are user classes mixed with
    this one by :func:`workbench.transform`. Everything the algebra, the apply methods and the
    displays need is here; internal names carry a ``_wb_`` prefix so that they stay out of the way
    of user classes.
    """

    _wb_name: str | None = None
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
        return Map(self)

    def __sub__(self, name: Any) -> "Transform":
        if not isinstance(name, str):
            return NotImplemented
        named = copy.copy(self)
        named._wb_name = name
        return named

    # --- applying ----------------------------------------------------------------------------

    def _wb_callable(self) -> Callable[[Any], Any]:
        """A plain callable computing this step on one input; composites cache these for speed."""
        return self.__call__  # type: ignore[attr-defined]

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

    def _wb_has_markers(self) -> bool:
        return any(isinstance(t, _Marker) for t in self._wb_walk())

    def _wb_split(self, start: int) -> tuple[list["Transform | None"], int]:
        """Split into per-stage parts, entering in stage ``start``; returns (parts, end stage)."""
        parts: list[Transform | None] = [None, None, None]
        parts[start] = self
        return parts, start

    @_computed
    def stages(self) -> Stages:
        """``Stages(preprocess, forward, postprocess)``, each a pipeline (``identity`` if empty)."""
        parts, _ = self._wb_split(PREPROCESS)
        return Stages(*(p if p is not None else identity for p in parts))

    def _wb_modules(self) -> list[Any]:
        """The torch layers among this pipeline's steps, each once."""
        import torch

        seen: dict[int, Any] = {}
        for t in self._wb_walk():
            if isinstance(t, torch.nn.Module):
                seen.setdefault(id(t), t)
        return list(seen.values())

    @_computed
    def device(self) -> Any:
        """The device of the pipeline's first parameter or buffer; ``cpu`` when it has none."""
        import torch

        for owner, table, key in self._wb_first_tensor():
            tensors = getattr(owner, table)
            try:
                tensor = tensors.get(key)
            except AttributeError:  # a TorchScript module's table has no .get
                tensor = tensors[key] if key in tensors else None
            if tensor is not None:
                return tensor.device
        return torch.device("cpu")

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


class _Composite(Transform):
    """A transform made of others; holds them in an immutable tuple."""

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
        return cls(items)

    def _fns_cached(self) -> list[Callable[[Any], Any]]:
        if self._fns is None:
            self._fns = [c._wb_callable() for c in self._children]
        return self._fns

    def _wb_children(self) -> Sequence[Transform]:
        return self._children

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

    def __len__(self) -> int:
        return len(self._children)

    def __getitem__(self, key: int | slice | str) -> Transform:
        if isinstance(key, str):
            for t in self._wb_walk():
                if t._wb_name == key:
                    return t
            names = sorted({t._wb_name for t in self._wb_walk() if t._wb_name})
            raise KeyError(f"no step named {key!r} in this pipeline; named steps: {names or 'none'}")
        if isinstance(key, slice):
            return type(self)(self._children[key])
        return self._children[key]

    def __iter__(self) -> Iterator[Transform]:
        return iter(self._children)

    def __repr__(self) -> str:
        from .display import to_text

        return to_text(self)


class Compose(_Composite):
    """``a >> b >> c``: each step's output is the next step's input."""

    def __init__(self, steps: Sequence[Transform], origin: Sequence[int] | None = None):
        super().__init__(steps)
        if origin is not None:
            self._wb_origin = tuple(origin)

    def __call__(self, x: Any) -> Any:
        i = 0
        try:
            for f in self._fns or self._fns_cached():
                x = f(x)
                i += 1
        except Exception as exc:
            _annotate(exc, self, i)
            raise
        return x

    def _wb_split(self, start: int) -> tuple[list[Transform | None], int]:
        if not self._wb_has_markers():
            return super()._wb_split(start)
        parts: list[list[Transform]] = [[], [], []]
        origins: list[list[int]] = [[], [], []]
        stage = start
        for i, child in enumerate(self._children):
            child_parts, stage_after = child._wb_split(stage)
            for s, part in enumerate(child_parts):
                if part is not None:
                    parts[s].append(part)
                    origins[s].append(i)
            stage = stage_after
        # Each stage keeps the positions its steps had here, so errors name the step as the user sees it.
        return [Compose(p, origin=o) if p else None for p, o in zip(parts, origins)], stage


class _Branching(_Composite):
    """Shared by Rollout and Parallel: several branches whose results form a tuple."""

    def _wb_split(self, start: int) -> tuple[list[Transform | None], int]:
        if not self._wb_has_markers():
            return super()._wb_split(start)
        splits = [c._wb_split(start) for c in self._children]
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
            parts[s] = kind(branch_parts)
        return parts, end


class Rollout(_Branching):
    """``a + b``: every branch gets the same input; the output is the tuple of their outputs."""

    def __call__(self, x: Any) -> tuple[Any, ...]:
        out = []
        try:
            for f in self._fns or self._fns_cached():
                out.append(f(x))
        except Exception as exc:
            _annotate(exc, self, len(out))
            raise
        return tuple(out)


class Parallel(_Branching):
    """``a / b``: branch ``i`` gets element ``i`` of the input tuple."""

    def __call__(self, x: Any) -> tuple[Any, ...]:
        fns = self._fns or self._fns_cached()
        try:
            n = len(x)
        except TypeError:
            n = -1
        if n != len(fns):
            raise TypeError(
                f"parallel step {self._wb_title()!r} has {len(fns)} branches and needs a tuple of "
                f"{len(fns)} values; got {type(x).__name__}" + (f" of length {n}" if n >= 0 else "")
            )
        out = []
        try:
            for f, xi in zip(fns, x):
                out.append(f(xi))
        except Exception as exc:
            _annotate(exc, self, len(out))
            raise
        return tuple(out)


class _Sealed(_Composite):
    """A composite whose children have fixed roles: it cannot be sliced, and holds no stage markers."""

    def __getitem__(self, key: Any) -> Transform:
        if isinstance(key, slice):
            raise TypeError(f"a {self._wb_kind()} step cannot be sliced; index its parts instead")
        return super().__getitem__(key)

    def _wb_split(self, start: int) -> tuple[list[Transform | None], int]:
        if self._wb_has_markers():
            raise ValueError(f"batch/unbatch inside the {self._wb_kind()} step {self._wb_title()!r} is not "
                             "supported: put it inside one stage")
        return super()._wb_split(start)


class Map(_Sealed):
    """``~a``: ``a`` applied to each element of the input; the output is a list."""

    def __init__(self, inner: Transform):
        super().__init__([inner])

    def __call__(self, xs: Any) -> list[Any]:
        f = (self._fns or self._fns_cached())[0]
        try:
            return [f(x) for x in xs]
        except Exception as exc:
            _annotate(exc, self, 0)
            raise


# --- stage markers -----------------------------------------------------------------------------


class _Marker(Transform):
    """A stage boundary. Called directly it collates (``batch``) or splits (``unbatch``) one item."""

    _stage_from: int
    _stage_to: int

    def _wb_split(self, start: int) -> tuple[list[Transform | None], int]:
        if start != self._stage_from:
            raise ValueError(
                f"'{self._wb_kind()}' cannot come in the {STAGE_NAMES[start]} stage: a pipeline has at most "
                "one batch, followed by at most one unbatch"
            )
        return [None, None, None], self._stage_to

    def __repr__(self) -> str:
        return self._wb_kind()

    def __reduce__(self) -> str:
        return self._wb_kind()

    def __copy__(self) -> "_Marker":
        raise TypeError(f"'{self._wb_kind()}' is a marker and cannot be named")


class Batch(_Marker):
    """Everything before ``batch`` runs per item in a DataLoader; the items are then collated."""

    _stage_from, _stage_to = PREPROCESS, FORWARD

    def __call__(self, x: Any) -> Any:
        return to_device(collate([x]))

    def _wb_kind(self) -> str:
        return "batch"


class Unbatch(_Marker):
    """Everything after ``unbatch`` runs per item on the forward stage's split output."""

    _stage_from, _stage_to = FORWARD, POSTPROCESS

    def __call__(self, x: Any) -> Any:
        if type(x) is _Tensor and x.dim() and x.shape[0] == 1:  # the common case, without the general walk
            return x.unbind(0)[0]
        items = uncollate(x)
        if len(items) != 1:
            raise ValueError(f"unbatch of a single item produced {len(items)} items")
        return items[0]

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

    mode = "infer"

    def __init__(self, then: Any, else_: Any = None):
        from .transform import transform

        super().__init__([transform(then), transform(else_) if else_ is not None else identity])

    def __call__(self, x: Any) -> Any:
        then, else_ = self._fns or self._fns_cached()
        branch = 0 if current_mode() == self.mode else 1
        try:
            return (then, else_)[branch](x)
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

    def __init__(self, t: Any, catch: Any, exceptions: type[BaseException] | tuple[type[BaseException], ...] = Exception,
                 else_: Any = None, finally_: Any = None):
        from .transform import transform

        parts = [transform(t), transform(catch),
                 transform(else_) if else_ is not None else identity,
                 transform(finally_) if finally_ is not None else identity]
        super().__init__(parts)
        self.exceptions = exceptions

    def __call__(self, x: Any) -> Any:
        t, catch, else_, finally_ = self._fns or self._fns_cached()
        stage = 0
        try:
            try:
                out = t(x)
            except self.exceptions:
                stage = 1
                out = catch(x)
            else:
                stage = 2
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
