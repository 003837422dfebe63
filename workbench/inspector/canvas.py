"""``ViewCanvas``: the widget that draws a view in the browser from a JSON description and binary arrays.

The front end is an ES module shipped in the package (``static/inspector.js``, loaded by anywidget:
no build step, and it runs wherever ipywidgets run: JupyterLab 4, Notebook 7, VS Code). The kernel
sends what to draw (:class:`ViewData`): the view's description as JSON, and the pixel data as raw
``float32``/``uint8`` buffers named by a hash of their content. The browser keeps the buffers it has
received, so going back to an example already seen sends only the description; a browser that lacks
a buffer (e.g. after a page reload) asks for it.

>>> canvas = ViewCanvas()
>>> data = ViewData()
>>> ref = data.array(np.zeros((8, 8)))
>>> ref["dtype"], ref["shape"]
('float32', [8, 8])
>>> canvas.show(data, {"columns": [{"title": "zeros", "blocks": []}]})
>>> canvas.show(data, {"columns": [{"title": "zeros again", "blocks": []}]})
>>> canvas.arrays_sent    # the 256 bytes went once
1
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import anywidget
import numpy as np
import traitlets

__all__ = ["ViewCanvas", "ViewData", "MAX_VALUES", "HALF_ABOVE"]

_STATIC = Path(__file__).with_name("static")

MAX_VALUES = 1 << 18
"""The most values one view sends (262,144: 1 MiB of float32, e.g. one 512x512 image or 16 maps of
128x128); larger image data is shown downsampled by a whole stride, and the view says so."""

HALF_ABOVE = 1 << 14
"""Views with more image values than this (16,384) send them as float16 (half the bytes; about three
significant digits on hover; statistics are computed in the kernel at full precision)."""

_HALF_MAX = 65504.0  # the largest float16
_REMEMBERED = 512  # keys of buffers the kernel believes the browser holds


class ViewData:
    """The arrays of one view, by content key; :meth:`array` returns the reference the description uses."""

    def __init__(self) -> None:
        self.arrays: dict[str, tuple[dict[str, Any], bytes]] = {}

    def array(self, values: Any, half: bool = False) -> dict[str, Any]:
        """Add ``values`` (``uint8`` stays bytes, anything else becomes ``float32``, or ``float16`` with
        ``half=True`` when every finite value fits it); returns its reference."""
        a = np.asarray(values)
        if a.dtype != np.uint8:
            finite = a[np.isfinite(a)]
            fits = not finite.size or float(np.abs(finite).max()) < _HALF_MAX
            a = a.astype(np.float16 if half and fits else np.float32)
        a = np.ascontiguousarray(a)
        dtype = {np.dtype(np.uint8): "uint8", np.dtype(np.float16): "float16"}.get(a.dtype, "float32")
        data = a.tobytes()
        digest = hashlib.blake2b(data, digest_size=12)
        digest.update(f"{dtype}{a.shape}".encode())
        ref = {"key": digest.hexdigest(), "dtype": dtype, "shape": list(a.shape)}
        self.arrays[ref["key"]] = (ref, data)
        return ref

    @property
    def values(self) -> int:
        """How many values the view's arrays hold."""
        return sum(int(np.prod(ref["shape"])) for ref, _ in self.arrays.values())


class ViewCanvas(anywidget.AnyWidget):
    """Draws views in the browser (see the module docstring); ``on_navigate(what, delta)`` gets the
    arrow keys pressed in the view (``what``: ``"example"`` or ``"step"``)."""

    _esm = _STATIC / "inspector.js"
    _css = _STATIC / "inspector.css"
    spec = traitlets.Dict().tag(sync=True)
    alpha = traitlets.Float(0.6, help="the attribution overlay's opacity (the slider in the view)").tag(sync=True)

    def __init__(self, on_navigate: Callable[[str, int], None] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.on_navigate = on_navigate
        self._sent: OrderedDict[str, None] = OrderedDict()
        self._current: dict[str, tuple[dict[str, Any], bytes]] = {}
        self._serial = 0
        self.bytes_sent = 0
        """Bytes sent to the browser: array buffers and view descriptions."""
        self.arrays_sent = 0
        self.on_msg(self._on_message)

    def show(self, data: ViewData, spec: dict[str, Any]) -> None:
        """Draw ``spec``, sending only the arrays of ``data`` the browser does not have yet."""
        self._send_arrays([item for key, item in data.arrays.items() if key not in self._sent])
        self._current = data.arrays
        self._serial += 1
        spec = {**spec, "serial": self._serial}
        self.bytes_sent += len(json.dumps(spec, separators=(",", ":")))
        self.spec = spec

    def clear(self) -> None:
        """Draw nothing."""
        self._current = {}
        self.spec = {}

    def _send_arrays(self, items: list[tuple[dict[str, Any], bytes]]) -> None:
        if not items:
            return
        content = {"type": "arrays", "arrays": [ref for ref, _ in items]}
        self.send(content, buffers=[memoryview(data) for _, data in items])
        self.bytes_sent += len(json.dumps(content, separators=(",", ":"))) + sum(len(d) for _, d in items)
        self.arrays_sent += len(items)
        for ref, _ in items:
            self._sent[ref["key"]] = None
            self._sent.move_to_end(ref["key"])
        while len(self._sent) > _REMEMBERED:
            self._sent.popitem(last=False)

    def _on_message(self, _: Any, content: dict[str, Any], buffers: list[Any]) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "want":
            self._send_arrays([self._current[k] for k in content.get("keys", []) if k in self._current])
        elif kind == "navigate" and self.on_navigate is not None:
            what, delta = content.get("what"), content.get("delta")
            if what in ("example", "step") and delta in (-1, 1):
                self.on_navigate(what, delta)
