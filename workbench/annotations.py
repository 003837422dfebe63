"""Names for a pipeline's classes, features and tokens, given once and used by every tool.

``annotate(pipeline, class_names=..., feature_names=..., vocab=...)`` stores them on the pipeline;
``pipeline.annotations`` reads them back (a plain dict with a key only for what was set). ``explain``,
``hard_examples``, ``confusion_matrix``, the inspector, the plots and ``workbench predict --names``
use them as defaults; a keyword of the same name on a call overrides them. Bundles keep them (the
manifest's ``"annotations"`` holds a readable copy; the bundle's source rebuilds them exactly).

A pipeline's annotations include those of its steps: annotating the model step is enough for the
whole pipeline built around it (the pipeline's own annotations win on the same key). A model with a
Hugging Face style ``config.id2label`` supplies class names without annotation.

``vocab`` maps a token id to its string: a sequence (``vocab[id]``), a dict (id -> string; a dict
of string -> id, the usual way a vocabulary is built, is read the other way round), or a callable
``vocab(id) -> str``. A callable is saved in a bundle as source like any function of the pipeline,
so a tokenizer's bound method of an installed package is imported, and one that cannot be rebuilt
is refused by name at save time.

>>> import torch
>>> from workbench import transform, annotate
>>> model = annotate(transform(torch.nn.Linear(4, 3)), class_names=["cat", "dog", "emu"])
>>> model.annotations
{'class_names': ['cat', 'dog', 'emu']}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

if TYPE_CHECKING:
    from .pipeline import Transform

__all__ = ["annotate", "annotations_of", "class_names", "feature_names", "vocabulary", "token_strings",
           "class_index", "output_class", "class_name", "class_label", "to_json"]

KEYS = ("class_names", "feature_names", "vocab")


def annotate(pipeline: "Transform", *, class_names: Sequence[Any] | None = None,
             feature_names: Sequence[Any] | None = None,
             vocab: Sequence[str] | Mapping[Any, Any] | Callable[[int], str] | None = None) -> "Transform":
    """Store names on ``pipeline`` (in place) and return it; ``None`` leaves a name as it was.

    >>> pl = annotate(pl, class_names=["neg", "pos"], vocab=word_to_id)  # doctest: +SKIP
    """
    from .pipeline import Batch, Transform, Unbatch

    if not isinstance(pipeline, Transform):
        raise TypeError(f"annotate needs a workbench pipeline or step, got {type(pipeline).__name__}")
    if isinstance(pipeline, (Batch, Unbatch)):
        raise TypeError(f"'{pipeline._wb_kind()}' is a stage marker shared by every pipeline; annotate the pipeline "
                        "or its model step instead")
    given: dict[str, Any] = {}
    if class_names is not None:
        given["class_names"] = _names(class_names, "class_names")
    if feature_names is not None:
        given["feature_names"] = _names(feature_names, "feature_names")
    if vocab is not None:
        given["vocab"] = _vocab(vocab)
    stored = dict(pipeline.__dict__.get("_wb_annotations") or {})
    stored.update(given)
    pipeline.__dict__["_wb_annotations"] = stored
    return pipeline


def annotations_of(t: "Transform") -> dict[str, Any]:
    """``t``'s annotations over those of its steps (the first step to set a key wins among steps)."""
    own = t.__dict__.get("_wb_annotations") if hasattr(t, "__dict__") else None
    out: dict[str, Any] = {}
    for step in t._wb_walk():
        if step is t:
            continue
        for key, value in (step.__dict__.get("_wb_annotations") or {}).items():
            out.setdefault(key, value)
    out.update(own or {})
    return out


def _names(names: Any, what: str) -> list[str]:
    if isinstance(names, (str, bytes)) or not hasattr(names, "__iter__"):
        raise TypeError(f"{what} must be a sequence of names, got {type(names).__name__}")
    out = [str(n) for n in names]
    if not out:
        raise ValueError(f"{what} is empty")
    return out


def _vocab(vocab: Any) -> Any:
    if isinstance(vocab, Mapping):
        return dict(vocab)
    if isinstance(vocab, (str, bytes)):
        raise TypeError("vocab must be a sequence of token strings, a dict or a callable, got a string")
    if callable(vocab):
        return vocab
    if hasattr(vocab, "__iter__"):
        return [str(v) for v in vocab]
    raise TypeError(f"vocab must be a sequence of token strings, a dict or a callable, got {type(vocab).__name__}")


# --- resolving: explicit keyword > annotation > what the model says ----------------------------------


def class_names(pipeline: Any, explicit: Sequence[Any] | None = None) -> list[str] | None:
    """The class names to show: ``explicit`` if given, else the annotation, else a model's ``config.id2label``."""
    if explicit is not None:
        return _names(explicit, "class_names")
    found = _annotation(pipeline, "class_names")
    if found is not None:
        return list(found)
    return _id2label(pipeline)


def feature_names(pipeline: Any, explicit: Sequence[Any] | None = None) -> list[str] | None:
    """The feature names to show: ``explicit`` if given, else the annotation."""
    if explicit is not None:
        return _names(explicit, "feature_names")
    found = _annotation(pipeline, "feature_names")
    return list(found) if found is not None else None


def vocabulary(pipeline: Any, explicit: Any = None) -> Callable[[int], str] | None:
    """A function id -> token string from ``explicit`` or the annotation; ``None`` when there is none."""
    vocab = _vocab(explicit) if explicit is not None else _annotation(pipeline, "vocab")
    if vocab is None:
        return None
    if callable(vocab) and not isinstance(vocab, Mapping):
        return lambda i: str(vocab(int(i)))
    if isinstance(vocab, Mapping):
        if vocab and all(isinstance(k, str) for k in vocab) and all(isinstance(v, int) for v in vocab.values()):
            inverse = {v: k for k, v in vocab.items()}  # word -> id, as vocabularies are usually built
        else:
            inverse = {int(k) if isinstance(k, str) and k.lstrip("-").isdigit() else k: str(v)
                       for k, v in vocab.items()}
        return lambda i: inverse.get(int(i), f"<{int(i)}>")
    table = list(vocab)
    return lambda i: table[int(i)] if 0 <= int(i) < len(table) else f"<{int(i)}>"


def token_strings(pipeline: Any, ids: Any, vocab: Any = None) -> list[str] | None:
    """The strings of the token ids ``ids`` (a 1-D tensor or sequence) through the vocabulary, if any."""
    lookup = vocabulary(pipeline, vocab)
    if lookup is None:
        return None
    values = ids.tolist() if hasattr(ids, "tolist") else list(ids)
    return [lookup(i) for i in values]


def class_index(target: Any, names: Sequence[str] | None, classes: int | None = None) -> int:
    """The index of class ``target``: an index, or a name looked up in ``names``.

    >>> class_index("dog", ["cat", "dog"])
    1
    """
    import operator

    if isinstance(target, str):
        if not names:
            raise ValueError(f"target {target!r} is a class name, but this pipeline has no class names: pass "
                             "class_names=... or annotate(pipeline, class_names=...)")
        try:
            return list(names).index(target)
        except ValueError:
            raise ValueError(f"unknown class {target!r}; the classes are {', '.join(map(repr, names))}") from None
    try:
        index = operator.index(target.item() if hasattr(target, "item") else target)
    except (TypeError, ValueError, RuntimeError):
        index = -1
    limit = classes if classes is not None else (len(names) if names else None)
    if isinstance(target, bool) or index < 0 or (limit is not None and index >= limit):
        span = f" (0..{limit - 1})" if limit is not None else ""
        raise ValueError(f"target={target!r} is not a class index of the forward output{span}")
    return index


def output_class(value: Any) -> int | None:
    """The class index an output is: an int, or a 0-d integer tensor or array; ``None`` for anything else.

    >>> import torch
    >>> output_class(torch.tensor(2)), output_class(torch.tensor(0.9)), output_class(True)
    (2, None, None)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    module = type(value).__module__
    if module.startswith("torch"):
        import torch

        if (isinstance(value, torch.Tensor) and value.dim() == 0 and value.dtype != torch.bool
                and not value.is_floating_point() and not value.is_complex()):
            return int(value)
    elif module.startswith("numpy"):
        import numpy

        if isinstance(value, (numpy.ndarray, numpy.generic)) and value.ndim == 0 and value.dtype.kind in "iu":
            return int(value)
    return None


def class_name(index: int, names: Sequence[Any] | Mapping[int, Any] | None) -> str | None:
    """The name of class ``index`` in ``names`` (a list, or a dict index -> name); ``None`` when it has none.

    >>> class_name(1, ["cat", "dog"]), class_name(2, ["cat", "dog"]), class_name(2, {2: "emu"})
    ('dog', None, 'emu')
    """
    if not names:
        return None
    if isinstance(names, Mapping):
        name = names.get(index)
        return None if name is None else str(name)
    return str(names[index]) if 0 <= index < len(names) else None


def class_label(index: Any, names: Sequence[Any] | Mapping[int, Any] | None) -> str:
    """The name of class ``index`` when known, else the index as text (``"-"`` for no index).

    >>> class_label(1, ["cat", "dog"]), class_label(7, ["cat", "dog"]), class_label(None, None)
    ('dog', '7', '-')
    """
    if index is None:
        return "-"
    i = int(index)
    name = class_name(i, names)
    return str(i) if name is None else name


def to_json(annotations: Mapping[str, Any]) -> dict[str, Any]:
    """The annotations as JSON for a bundle's manifest; a callable vocabulary is recorded by name."""
    out: dict[str, Any] = {}
    for key in KEYS:
        if key not in annotations:
            continue
        value = annotations[key]
        if key == "vocab" and isinstance(value, Mapping):
            value = {str(k): v if isinstance(v, (str, int)) else str(v) for k, v in value.items()}
        elif key == "vocab" and callable(value):
            name = getattr(value, "__qualname__", None) or type(value).__name__
            value = {"callable": f"{getattr(value, '__module__', '') or ''}.{name}".lstrip(".")}
        out[key] = value
    return out


def _annotation(pipeline: Any, key: str) -> Any:
    from .pipeline import Transform

    if not isinstance(pipeline, Transform):
        return None
    return annotations_of(pipeline).get(key)


def _id2label(pipeline: Any) -> list[str] | None:
    from .pipeline import Transform

    if not isinstance(pipeline, Transform):
        return None
    for module in pipeline._wb_modules():
        for sub in module.modules():
            mapping = getattr(getattr(sub, "config", None), "id2label", None)
            if isinstance(mapping, Mapping) and mapping:
                try:
                    ordered = sorted((int(k), str(v)) for k, v in mapping.items())
                except (TypeError, ValueError):
                    continue
                if [k for k, _ in ordered] == list(range(len(ordered))):
                    return [v for _, v in ordered]
    return None
