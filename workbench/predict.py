"""Running a saved bundle on JSON inputs and writing its outputs as JSON lines (``workbench predict``).

Inputs are JSON values, each handed to the pipeline exactly as :func:`json.loads` decodes it (lists,
dicts, numbers, strings, booleans, ``null``), or converted first with ``as_type="tensor"``
(``torch.tensor(value, dtype=...)``) or ``"numpy"`` (``numpy.asarray(value, dtype=...)``). The literals ``NaN``,
``Infinity`` and ``-Infinity`` are accepted in inputs.

Outputs are encoded by :func:`to_json`: tensors and numpy arrays as nested lists (a 0-d one as a
plain number), numpy/torch scalars as numbers, tuples and lists as lists, named tuples (also
the outputs of ``a + b`` and ``a / b`` when a branch has a name) and dataclasses as objects of
their fields (a ``+``/``/`` output whose branches are all anonymous, ``out_0, out_1...``, is a
list, as a plain tuple is), dicts as objects (keys must be strings, ints, floats or booleans;
they become strings as JSON requires). JSON has no non-finite numbers, so NaN and
infinities are written according to ``non_finite``: ``"string"`` (the default) writes the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"``, ``"null"`` writes ``null``, ``"error"`` refuses.
Anything else (bytes, complex numbers, arbitrary objects) is an :class:`EncodeError` naming the
type and where in the output it sits: nothing is guessed.

>>> import torch
>>> to_json({"label": torch.tensor(3), "p": (0.5, float("nan"))})
'{"label": 3, "p": [0.5, "NaN"]}'
>>> parse_inputs(['[1, 2]', '"a"'], where="argument")
[[1, 2], 'a']
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence, TextIO

from ._text import article, shorten
from .errors import EncodeError, InputError, NamesError

__all__ = [
    "parse_inputs",
    "read_json_lines",
    "read_lines",
    "decode",
    "converter",
    "convert_inputs",
    "predict",
    "to_jsonable",
    "to_json",
    "with_names",
    "NON_FINITE_CHOICES",
    "AS_TYPE_CHOICES",
]

NON_FINITE_CHOICES = ("string", "null", "error")
AS_TYPE_CHOICES = ("json", "tensor", "numpy")
_NON_FINITE_STRINGS = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def parse_inputs(texts: Sequence[str], *, where: str = "argument") -> list[Any]:
    """Decode each text as one JSON value; :class:`InputError` names the first bad one (1-based).

    >>> try:
    ...     parse_inputs(["3", "{bad"])
    ... except InputError as exc:
    ...     print(exc)
    argument 2 is not valid JSON (Expecting property name enclosed in double quotes at column 2): '{bad'
    """
    values = []
    for i, text in enumerate(texts, 1):
        values.append(_decode(text, f"{where} {i}"))
    return values


def read_json_lines(path: str | Path, stdin: TextIO | None = None) -> list[Any]:
    """The JSON values of a JSON-lines file, one per non-blank line; ``"-"`` reads ``stdin``.

    A missing file or a line that is not one JSON value is an :class:`InputError` naming the file
    and the line number.
    """
    return [decode(text, where) for where, text in read_lines(path, stdin)]


def read_lines(path: str | Path, stdin: TextIO | None = None) -> list[tuple[str, str]]:
    """``(where, text)`` for each non-blank line of a text file (``"-"``: ``stdin``), newline removed.

    ``where`` names the file and line (``in.txt line 3``) for per-input messages. The texts are not
    decoded: :func:`decode` them as JSON, or hand them to the pipeline as they are
    (``workbench predict --lines``).
    """
    if str(path) == "-":
        import sys

        return _numbered(stdin if stdin is not None else sys.stdin, "<stdin>")
    file = Path(path)
    if not file.exists():
        raise InputError(f"input file {str(file)!r} does not exist")
    if file.is_dir():
        raise InputError(f"input file {str(file)!r} is a directory")
    try:
        with file.open(encoding="utf-8", newline=None) as stream:
            return _numbered(stream, str(file))
    except UnicodeDecodeError as exc:
        raise InputError(f"input file {str(file)!r} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _numbered(stream: Iterable[str], name: str) -> list[tuple[str, str]]:
    return [(f"{name} line {number}", line.rstrip("\r\n")) for number, line in enumerate(stream, 1) if line.strip()]


def decode(text: str, where: str) -> Any:
    """One JSON value; :class:`InputError` naming ``where`` when ``text`` is not exactly one.

    >>> decode('"the striker scored"', "input 1")
    'the striker scored'
    """
    return _decode(text, where)


def _decode(text: str, where: str) -> Any:
    shown = shorten(text.strip(), 60, "...")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        position = f"column {exc.colno}" if exc.lineno == 1 else f"line {exc.lineno} column {exc.colno}"
        raise InputError(f"{where} is not valid JSON ({exc.msg} at {position}): {shown!r}") from None
    except RecursionError:
        raise InputError(f"{where} is nested too deeply to decode: {shown!r}") from None
    except ValueError as exc:  # an integer with more digits than Python converts (sys.get_int_max_str_digits)
        raise InputError(f"{where} cannot be decoded ({exc}): {shown!r}") from None


def convert_inputs(values: list[Any], as_type: str = "json", dtype: str | None = None) -> list[Any]:
    """The inputs as the pipeline receives them: unchanged (``"json"``), tensors or numpy arrays.

    ``dtype`` (e.g. ``"float32"``) is the tensor's or array's element type; by default torch and
    numpy infer it (``float32`` for torch, ``float64`` for numpy, from floats).

    >>> convert_inputs([[1.0, 2.0]], "tensor")
    [tensor([1., 2.])]
    >>> convert_inputs([[1, 2]], "numpy", "float32")[0].dtype
    dtype('float32')
    """
    convert = converter(as_type, dtype)
    return [convert(value, f"input {i}") for i, value in enumerate(values, 1)]


def converter(as_type: str = "json", dtype: str | None = None) -> Any:
    """``convert(value, where)`` turning one decoded input into what the pipeline receives.

    Bad options raise :class:`InputError` at once; a value that cannot be converted raises it
    naming ``where``.

    >>> converter("numpy", "int64")([1, 2], "input 1").tolist()
    [1, 2]
    """
    if as_type == "json":
        if dtype is not None:
            raise InputError("--dtype needs --as tensor or --as numpy")
        return lambda value, where: value
    if as_type == "tensor":
        import torch

        kind = getattr(torch, dtype, None) if dtype is not None else None
        if dtype is not None and not isinstance(kind, torch.dtype):
            raise InputError(f"{dtype!r} is not a torch dtype (e.g. float32, float64, int64, bool)")

        def convert(value: Any) -> Any:
            return torch.tensor(value, dtype=kind)
    elif as_type == "numpy":
        import numpy

        try:
            kind = numpy.dtype(dtype) if dtype is not None else None
        except TypeError:
            raise InputError(f"{dtype!r} is not a numpy dtype (e.g. float32, float64, int64, bool)") from None

        def convert(value: Any) -> Any:
            return numpy.asarray(value, dtype=kind)
    else:
        raise ValueError(f"as_type must be one of {', '.join(AS_TYPE_CHOICES)}, not {as_type!r}")

    def checked(value: Any, where: str) -> Any:
        try:
            return convert(value)
        except Exception as exc:  # the converters raise TypeError/ValueError/RuntimeError alike
            raise InputError(f"{where} cannot be made into a {as_type} ({type(exc).__name__}: {exc})") from None

    return checked


def predict(pipeline: Any, inputs: Sequence[Any], *, batch_size: int | None = None) -> Iterator[Any]:
    """One output per input, in order.

    Without ``batch_size`` each input goes through ``pipeline.infer_apply``; with it, the inputs go
    through ``pipeline.eval_apply(inputs, batch_size=batch_size)`` (a pipeline with ``batch`` but no
    ``unbatch`` yields batches, which are split back into items here so that outputs still line up
    with inputs).
    """
    if batch_size is None:
        for x in inputs:
            yield pipeline.infer_apply(x)
        return
    from .collate import uncollate
    from .pipeline import Batch, Unbatch

    nodes = list(pipeline._wb_walk())
    split = any(isinstance(n, Batch) for n in nodes) and not any(isinstance(n, Unbatch) for n in nodes)
    for output in pipeline.eval_apply(list(inputs), batch_size=batch_size):
        if split:
            yield from uncollate(output)
        else:
            yield output


def with_names(output: Any, names: Sequence[str], where: str = "input 1") -> Any:
    """``output`` with class names: a class index becomes its name, one score per class a dict name -> score.

    >>> with_names(1, ["neg", "pos"]), with_names([0.2, 0.8], ["neg", "pos"])
    ('pos', {'neg': 0.2, 'pos': 0.8})
    """
    import numbers

    from .annotations import class_name, output_class

    index = output_class(output)
    if index is not None:
        name = class_name(index, names)
        if name is None:
            raise NamesError(f"--names: the output for {where} is class {index}, but there are "
                             f"{len(names)} class names")
        return name
    value = output
    if hasattr(value, "detach"):
        value = value.detach().cpu()
    if hasattr(value, "ndim") and getattr(value, "ndim") == 0:
        value = value.item()
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)) and len(value) == len(names) \
            and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        return dict(zip(names, value))
    shape = f"a list of {len(value)}" if isinstance(value, (list, tuple)) else type(output).__name__
    raise NamesError(f"--names: the output for {where} is {shape}; names apply to a class index or to one "
                     f"score per class ({len(names)} classes)")


def to_jsonable(value: Any, non_finite: str = "string", _where: str = "output") -> Any:
    """``value`` as plain JSON data (see the module docstring for the rules).

    >>> import numpy as np
    >>> to_jsonable((np.arange(3), np.float32(1.5), float("inf")))
    [[0, 1, 2], 1.5, 'Infinity']
    """
    if non_finite not in NON_FINITE_CHOICES:
        raise ValueError(f"non_finite must be one of {', '.join(NON_FINITE_CHOICES)}, not {non_finite!r}")
    return _plain(value, non_finite, _where)


def to_json(value: Any, non_finite: str = "string") -> str:
    """One line of JSON for ``value`` (never the invalid tokens ``NaN``/``Infinity``)."""
    return json.dumps(to_jsonable(value, non_finite), allow_nan=False, ensure_ascii=False)


def _plain(value: Any, non_finite: str, where: str) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _float(float(value), non_finite, where)
    module = type(value).__module__
    if module == "torch" or module.startswith("torch."):
        import torch

        if isinstance(value, torch.Tensor):
            if value.is_complex():
                raise EncodeError(f"{where} is a complex tensor; JSON has no complex numbers")
            if value.layout != torch.strided:
                value = value.to_dense()
            value = value.detach().cpu()
            if not value.is_floating_point() or bool(torch.isfinite(value).all()):
                return value.tolist()
            return _plain(value.tolist(), non_finite, where)
        if isinstance(value, torch.Size):
            return [int(d) for d in value]
        if isinstance(value, (torch.dtype, torch.device)):
            return str(value)
    if module == "numpy" or module.startswith("numpy."):
        import numpy

        if isinstance(value, (numpy.ndarray, numpy.generic)):
            if numpy.iscomplexobj(value):
                raise EncodeError(f"{where} is a complex numpy value; JSON has no complex numbers")
            if value.dtype.kind not in "biuf":
                raise EncodeError(f"{where} is a numpy value of dtype {value.dtype}; only bool, int and float encode")
            if value.dtype.kind != "f" or bool(numpy.isfinite(value).all()):
                return value.tolist()
            return _plain(value.tolist(), non_finite, where)
    if isinstance(value, tuple) and hasattr(type(value), "_fields") and not getattr(type(value), "_wb_anonymous", False):
        return {field: _plain(v, non_finite, f"{where}.{field}") for field, v in zip(value._fields, value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v, non_finite, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for key, v in value.items():
            if isinstance(key, str):
                text = key
            elif isinstance(key, (bool, int, float)) or type(key).__module__.startswith(("numpy", "torch")):
                plain_key = _plain(key, "string", where)
                if not isinstance(plain_key, (bool, int, float, str)):
                    raise EncodeError(f"{where} has a key of type {type(key).__name__}; keys must be scalars")
                text = json.dumps(plain_key) if not isinstance(plain_key, str) else plain_key
            else:
                raise EncodeError(f"{where} has a key of type {type(key).__name__}; keys must be scalars")
            if text in out:
                raise EncodeError(f"{where} has two keys that both become the JSON key {text!r}")
            out[text] = _plain(v, non_finite, f"{where}[{key!r}]")
        return out
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name), non_finite, f"{where}.{f.name}")
                for f in dataclasses.fields(value)}
    kind = type(value).__qualname__
    if type(value).__module__ != "builtins":
        kind = f"{type(value).__module__}.{kind}"
    raise EncodeError(f"{where} is {article(kind)} {kind}, "
                      "which has no JSON form (tensors, arrays, numbers, strings, lists, tuples and dicts do)")


def _float(x: float, non_finite: str, where: str) -> Any:
    if math.isfinite(x):
        return x
    if non_finite == "null":
        return None
    if non_finite == "error":
        raise EncodeError(f"{where} is {x!r}, which JSON cannot represent (use --non-finite string or null)")
    return _NON_FINITE_STRINGS[repr(x)]
