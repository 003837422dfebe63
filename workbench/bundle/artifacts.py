"""Data stored by value: tensors (safetensors), arrays (``.npy``), tables and JSON values.

Nothing here uses pickle: tensors go to safetensors files, numpy arrays to ``.npy`` written and read
with ``allow_pickle=False``, data frames to a directory of one ``.npy`` per numeric column plus a
JSON description (text columns as JSON), and large literal containers to JSON. A data frame is only
accepted when this encoding gives back an identical frame (values, dtypes, index, column names).

Layout inside a bundle::

    weights.safetensors          parameters and buffers of the pipeline's torch layers
    artifacts/tensors.safetensors  other tensors the code uses
    artifacts/<name>.npy         numpy arrays
    artifacts/<name>.json        large lists/dicts
    artifacts/<name>.frame/      data frames and series (frame.json + column files)
    artifacts/<name>.torchscript TorchScript programs (``torch.jit.save`` archives, tensors emptied)

>>> import numpy as np, pandas as pd
>>> check_frame(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})) is None
True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .storage import DataFiles

__all__ = ["WEIGHTS", "TENSORS", "ALIGN", "write_all", "write_tensors", "load_tensors", "storable_dtype", "check_frame", "read_frame", "encode_frame", "decode_frame"]

WEIGHTS = "weights.safetensors"
TENSORS = "artifacts/tensors.safetensors"


def write_all(stored: DataFiles, root: Path) -> None:
    """Write every tensor, array, frame, JSON value and archive collected in ``stored`` under ``root``."""
    import numpy as np

    if stored.weights:
        write_tensors(root / WEIGHTS, stored.weights)
    if stored.tensors or stored.arrays or stored.frames or stored.json_values or stored.archives:
        (root / "artifacts").mkdir()
    for name, archive in stored.archives.items():
        (root / "artifacts" / f"{name}.torchscript").write_bytes(archive)
    if stored.tensors:
        write_tensors(root / TENSORS, stored.tensors)
    for name, array in stored.arrays.items():
        with open(root / "artifacts" / f"{name}.npy", "wb") as f:
            np.save(f, array, allow_pickle=False)
    for name, value in stored.json_values.items():
        with open(root / "artifacts" / f"{name}.json", "w", encoding="utf-8") as f:
            json.dump(value, f, allow_nan=False)
    for name, frame in stored.frames.items():
        directory = root / "artifacts" / f"{name}.frame"
        directory.mkdir()
        meta, arrays = encode_frame(frame)
        for filename, array in arrays.items():
            with open(directory / filename, "wb") as f:
                np.save(f, array, allow_pickle=False)
        with open(directory / "frame.json", "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=1)


# --- data frames ------------------------------------------------------------------------------------


def _encode_values(values: Any, dtype: Any, slot: str, arrays: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    entry: dict[str, Any] = {"dtype": str(dtype)}
    array = np.asarray(values)
    if array.dtype.hasobject or not isinstance(dtype, np.dtype):
        entry["values"] = [None if _is_missing(v) else _plain(v) for v in values]
    else:
        filename = f"{slot}.npy"
        arrays[filename] = np.ascontiguousarray(array)
        entry["file"] = filename
    return entry


def _is_missing(value: Any) -> bool:
    try:
        import pandas as pd

        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def encode_frame(frame: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(description, {filename: array})`` for a DataFrame or Series."""
    import pandas as pd

    arrays: dict[str, Any] = {}
    if isinstance(frame, pd.Series):
        meta: dict[str, Any] = {"type": "Series", "name": _plain(frame.name),
                                "columns": [_encode_values(frame.to_numpy(), frame.dtype, "c0", arrays)]}
    else:
        meta = {"type": "DataFrame", "columns": []}
        for i, column in enumerate(frame.columns):
            series = frame.iloc[:, i]
            entry = _encode_values(series.to_numpy(), series.dtype, f"c{i}", arrays)
            entry["name"] = _plain(column)
            meta["columns"].append(entry)
        meta["columns_dtype"] = str(frame.columns.dtype)
    index = frame.index
    if isinstance(index, pd.RangeIndex):
        meta["index"] = {"kind": "range", "start": index.start, "stop": index.stop, "step": index.step,
                         "name": _plain(index.name)}
    else:
        entry = _encode_values(index.to_numpy(), index.dtype, "index", arrays)
        entry.update(kind="values", name=_plain(index.name))
        meta["index"] = entry
    return meta, arrays


def _decode_values(entry: dict[str, Any], arrays: dict[str, Any]) -> Any:
    import pandas as pd

    if "file" in entry:
        return arrays[entry["file"]]
    return pd.array(entry["values"], dtype=entry["dtype"]) if entry["dtype"] != "object" else \
        _object_array(entry["values"])


def _object_array(values: list[Any]) -> Any:
    import numpy as np

    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def decode_frame(meta: dict[str, Any], arrays: dict[str, Any]) -> Any:
    """The frame described by ``meta`` (see :func:`encode_frame`)."""
    import pandas as pd

    index_meta = meta["index"]
    if index_meta["kind"] == "range":
        index = pd.RangeIndex(index_meta["start"], index_meta["stop"], index_meta["step"], name=index_meta["name"])
    else:
        index = pd.Index(_decode_values(index_meta, arrays), dtype=index_meta["dtype"], name=index_meta["name"])
    if meta["type"] == "Series":
        col = meta["columns"][0]
        return pd.Series(_decode_values(col, arrays), index=index, name=meta["name"], dtype=col["dtype"])
    data = {}
    names = []
    for i, col in enumerate(meta["columns"]):
        data[i] = pd.Series(_decode_values(col, arrays), index=index, dtype=col["dtype"])
        names.append(col["name"])
    frame = pd.DataFrame(data, index=index)
    frame.columns = pd.Index(names, dtype=meta.get("columns_dtype", "object"))
    return frame


def check_frame(frame: Any) -> str | None:
    """None when ``frame`` can be stored exactly, else what prevents it."""
    try:
        meta, arrays = encode_frame(frame)
        json.dumps(meta, allow_nan=False)
        back = decode_frame(json.loads(json.dumps(meta)), arrays)
    except Exception as exc:  # any failure means: not storable by value
        return f"it is a {type(frame).__name__} that cannot be stored without pickle ({type(exc).__name__}: {exc})"
    import pandas as pd

    same_type = type(back) is type(frame)
    if same_type and isinstance(frame, pd.DataFrame):
        same = frame.equals(back) and list(frame.dtypes) == list(back.dtypes) and frame.columns.equals(back.columns) \
            and frame.index.equals(back.index) and frame.index.dtype == back.index.dtype
    else:
        same = same_type and frame.equals(back) and frame.dtype == back.dtype and frame.name == back.name \
            and frame.index.equals(back.index)
    if not same:
        return (f"it is a {type(frame).__name__} whose columns or index do not survive storage without pickle "
                "(use numeric, boolean, datetime or text columns)")
    return None


def read_frame(files: dict[str, bytes]) -> Any:
    """The frame stored as ``files`` (``frame.json`` and its ``.npy`` columns, by name inside the frame directory)."""
    import io

    import numpy as np

    meta = json.loads(files["frame.json"].decode("utf-8"))
    arrays = {name: np.load(io.BytesIO(data), allow_pickle=False) for name, data in files.items()
              if name.endswith(".npy")}
    return decode_frame(meta, arrays)


# --- reading tensors ----------------------------------------------------------------------------------

_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64", "I32": "int32",
    "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool", "C64": "complex64", "U16": "uint16",
    "U32": "uint32", "U64": "uint64", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
}


def storable_dtype(dtype: Any) -> bool:
    """Whether tensors of ``dtype`` can go into a safetensors file."""
    return str(dtype).replace("torch.", "") in _DTYPES.values()


ALIGN = 64
_PAD = "__pad__"


def write_tensors(path: Path, tensors: dict[str, Any]) -> None:
    """Write a standard safetensors file in which every tensor starts 64-byte aligned.

    Any safetensors reader can read it; gaps between tensors are filled by ``__pad__<n>`` byte
    tensors (the format allows no holes). Alignment matters: math libraries take different code
    paths on unaligned data and results can differ in the last bit, and aligned tensors can be
    used straight from the memory-mapped file.
    """
    import torch

    names = {v: k for k, v in _DTYPES.items()}
    header: dict[str, Any] = {}
    layout: list[tuple[int, Any]] = []
    offset = 0
    for i, (name, t) in enumerate(tensors.items()):
        if offset % ALIGN:
            gap = ALIGN - offset % ALIGN
            header[f"{_PAD}{i}"] = {"dtype": "U8", "shape": [gap], "data_offsets": [offset, offset + gap]}
            layout.append((offset, gap))
            offset += gap
        nbytes = t.numel() * t.element_size()
        header[name] = {"dtype": names[str(t.dtype).replace("torch.", "")], "shape": list(t.shape),
                        "data_offsets": [offset, offset + nbytes]}
        layout.append((offset, t))
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((-(8 + len(text))) % ALIGN)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for _, item in layout:
            if isinstance(item, int):
                f.write(b"\0" * item)
            elif item.numel():
                f.write(memoryview(item.reshape(-1).view(torch.uint8).numpy()))


def load_tensors(buffer: Any, where: str) -> dict[str, Any]:
    """The tensors of a safetensors file read into ``buffer`` (a ``torch.uint8`` tensor), as views of it.

    The buffer is the process's own memory (not a mapping of the file), so the tensors do not change
    when the file does. A tensor that is not 64-byte aligned is copied to aligned memory.
    """
    import torch

    from .errors import IntegrityError

    try:
        size = buffer.numel()
        header_len = int.from_bytes(bytes(buffer[:8].numpy()), "little")
        if header_len > size - 8:
            raise ValueError("the header is longer than the file")
        header = json.loads(bytes(buffer[8:8 + header_len].numpy()).decode("utf-8"))
        data = buffer[8 + header_len:]
        out = {}
        for name, info in header.items():
            if name == "__metadata__" or name.startswith(_PAD):
                continue
            dtype = getattr(torch, _DTYPES[info["dtype"]])
            start, end = info["data_offsets"]
            shape = [int(d) for d in info["shape"]]
            numel = 1
            for d in shape:
                numel *= d
            if not 0 <= start <= end <= data.numel() or end - start != numel * dtype.itemsize:
                raise ValueError(f"tensor {name!r} has offsets outside the file or of the wrong length")
            raw = data[start:end]
            if raw.numel() and raw.data_ptr() % ALIGN:
                raw = raw.clone()
            out[name] = raw.view(dtype).reshape(shape)
        return out
    except (ValueError, KeyError, TypeError, RecursionError, UnicodeDecodeError, RuntimeError) as exc:
        raise IntegrityError(f"{where} is not a valid safetensors file ({type(exc).__name__}: {exc})") from None
