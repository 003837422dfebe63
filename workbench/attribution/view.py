"""The inspector's "Attribution" tab: explain the current example with a chosen method, target and layer.

Registered with :func:`workbench.inspector.register_view` when :mod:`workbench.attribution` is
imported, so every ``workbench.inspect(...)`` widget has it. Controls: method, base method (for
noise_tunnel), target class ("predicted" by default), layer (the input, or a submodule; layer
methods pick the last conv layer or the first embedding when none is chosen) and an optional reshape
(``8x8``) for flat inputs. The explanation is recomputed only when the example or a control that
changes it moves; a reshape only redraws.

The result is drawn in the browser by the inspector's :class:`~workbench.inspector.canvas.ViewCanvas`,
with the colours of :func:`plot_explanation` (blue against the target, red for it, symmetric around
zero): an image overlay whose opacity slider redraws in the browser (no kernel round trip; its
value is ``view.canvas.alpha``), coloured tokens with their values and a colour scale, or a
name/value table with bars. ``view.figure`` is the same explanation drawn by matplotlib.

>>> w = workbench.inspect(pl, images)                   # doctest: +SKIP
>>> view = w.view("Attribution")                        # doctest: +SKIP
>>> view.method.value = "grad_cam"; view.explanation    # doctest: +SKIP
"""

from __future__ import annotations

import html
from typing import Any, Mapping, Sequence

import ipywidgets as widgets
import numpy as np

from ..inspector.canvas import MAX_VALUES, ViewCanvas, ViewData
from ..inspector.extensions import View
from ..inspector.payload import MAX_ROWS, MAX_TOKENS
from .explain import Explanation, explain
from .methods import NoiseTunnel, default_method, get_method, method_names
from .plots import CMAP, _scale, attribution_kind, overlay_arrays, plot_explanation

__all__ = ["AttributionView", "VIEW_NAME"]

VIEW_NAME = "Attribution"

_NOISE_BASES = NoiseTunnel.bases


class AttributionView(View):
    """Attribution for the inspector's current example; ``explanation`` holds the last result."""

    def __init__(self, state: Any):
        self.state = state
        self.explanation: Explanation | None = None
        self.error: BaseException | None = None
        self._key: tuple[Any, ...] | None = None
        self._classes = 0
        self._quiet = False
        def small(**more: Any) -> dict[str, Any]:  # sized to the content, never wider than the view
            return {"layout": widgets.Layout(width="auto", max_width="100%", **more),
                    "style": {"description_width": "initial"}}

        self._integer_input = _integer_input(state)
        methods = runnable_methods(state.pipeline, self._integer_input)
        self.method = widgets.Dropdown(options=methods, value=methods[0], description="method", **small())
        self.base = widgets.Dropdown(options=_NOISE_BASES, value=_NOISE_BASES[0], description="base",
                                     **small(display="none"))
        self.target = widgets.Dropdown(options=[("predicted", -1)], value=-1, description="target", **small())
        self.layer = widgets.Dropdown(options=[("input", "")] + [(n, n) for n in _layer_names(state.pipeline)],
                                      value="", description="layer", **small())
        self.shape = widgets.Text(value="", placeholder="e.g. 8x8", description="reshape", **small())
        self.status = widgets.HTML()
        self.canvas = ViewCanvas()
        wrap = widgets.Layout(flex_flow="row wrap")
        controls = widgets.HBox([self.method, self.base, self.target, self.layer, self.shape], layout=wrap)
        self.widget = widgets.VBox([controls, self.status, self.canvas])
        for control in (self.method, self.base, self.target, self.layer):
            control.observe(self._on_control, "value")
        self.shape.observe(lambda _: self._draw(), "value")

    def _on_control(self, _: Any) -> None:
        if not self._quiet:
            self.update(self.state)

    # --- the view protocol ------------------------------------------------------------------------

    def update(self, state: Any) -> None:
        """Explain ``state``'s current example with the chosen settings (cached while nothing changed)."""
        self.state = state
        method = self.method.value
        bases = get_method(method).bases
        self.base.layout.display = "" if bases else "none"
        needs_layer = get_method(method).needs_layer
        layer = (self.layer.value or _default_layer(state.pipeline, method)) if needs_layer else None
        self.layer.disabled = not needs_layer
        target = None if self.target.value == -1 else int(self.target.value)
        key = (state.example, method, self.base.value if bases else None, target, layer)
        if key == self._key:
            return
        self._key = key
        options: dict[str, Any] = {"base": self.base.value} if bases else {}
        try:
            if needs_layer and layer is None:
                raise ValueError(f"method {method!r} needs a layer: choose one in the layer picker")
            self.explanation = explain(state.pipeline, state.input(), method=method, target=target, layer=layer,
                                       **options)
            self.error = None
        except Exception as exc:  # shown in the tab; the controls stay usable
            self.explanation, self.error = None, exc
            notes = "\n".join(getattr(exc, "__notes__", []))
            self.status.value = (f"<pre style='color:#b00;white-space:pre-wrap'>"
                                 f"{html.escape(f'{type(exc).__name__}: {exc}')}\n{html.escape(notes)}</pre>")
            self.canvas.clear()
            return
        self._sync_targets(self.explanation.output.shape[0] if self.explanation.output.dim() == 1 else 0)
        self._show_layer(self.explanation.layer or "")
        self._draw()

    def _show_layer(self, name: str) -> None:
        """Make the layer picker show the layer the explanation used ("input" for input methods)."""
        if self.layer.value == name or name not in [v for _, v in self.layer.options]:
            return
        self._quiet = True  # a display change, not a request (unobserving would also cut the widget's own sync)
        try:
            self.layer.value = name
        finally:
            self._quiet = False

    # --- drawing ----------------------------------------------------------------------------------

    @property
    def figure(self) -> Any:
        """The current explanation drawn by matplotlib (:func:`plot_explanation`), e.g. to save it; ``None``
        when there is none."""
        e = self.explanation
        if e is None:
            return None
        shape = _parse_shape(self.shape.value)
        label = self.state.example_label(self.state.example)
        # Text plots list the classes under the title themselves; one title per example either way.
        title = f"{label} · {e.method}" + (f" @ {e.layer}" if e.layer else "") \
            if attribution_kind(e, shape) == "text" else f"{label} · {self._describe(e)}"
        return plot_explanation(e, shape=shape, alpha=self.canvas.alpha, title=title)

    def _draw(self) -> None:
        e = self.explanation
        if e is None:
            return
        try:
            data, block = self._block(e, _parse_shape(self.shape.value))
        except ValueError as exc:
            self.status.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"
            return
        rows = [("method", e.method + (f" @ {e.layer}" if e.layer else "")), ("target", self._name(e.target)),
                ("predicted", self._name(e.prediction))]
        if e.prediction is not None and e.output.dim() == 1:
            rows.append(("probability", f"{float(e.output.float().softmax(0)[e.prediction]):.3f}"))
        if e.delta is not None:
            rows.append(("convergence delta", f"{e.delta:.3g}"))
        rows.append(("total", f"{float(e.scores.sum()):+.4g}"))
        label = self.state.example_label(self.state.example)
        self.canvas.show(data, {"columns": [{"title": f"{label} · attribution", "summary": rows, "blocks": [block]}],
                                "name": f"attribution-{e.method}-{self.state.example}"})
        delta = "" if e.delta is None else f" · convergence delta {e.delta:.3g}"
        self.status.value = (f"<span style='font-size:11px'>attributions {tuple(e.scores.shape)} for target "
                             f"{html.escape(self._name(e.target))}; predicted "
                             f"{html.escape(self._name(e.prediction))}{delta}</span>")

    def _block(self, e: Explanation, shape: tuple[int, ...] | None) -> tuple[ViewData, dict[str, Any]]:
        """What the browser draws: an overlay, coloured tokens, or a table with bars."""
        data = ViewData()
        kind = attribution_kind(e, shape)
        if kind == "image":
            image, heat = overlay_arrays(e, shape)
            stride = max(1, int(np.ceil(np.sqrt(2 * heat.size / MAX_VALUES))))
            heat = heat[::stride, ::stride]
            ref = None
            if image is not None:
                image = image[::stride, ::stride]
                ref = data.array(np.round(image * 255).astype(np.uint8) if image.ndim == 3 else image)
            caption = "" if stride == 1 else f"downsampled 1:{stride} (at most {MAX_VALUES:,} values per view)"
            return data, {"kind": "overlay", "image": ref, "heat": data.array(heat), "scale": _scale(heat),
                          "alpha": self.canvas.alpha, "caption": caption}
        scores = np.nan_to_num(e.scores.detach().float().cpu().numpy().reshape(-1))
        scale = _scale(scores)
        if kind == "text":
            tokens = list(e.tokens or [])[:MAX_TOKENS]
            caption = f"{len(e.tokens or [])} tokens" + ("" if len(tokens) == len(e.tokens or []) else
                                                          f" (first {MAX_TOKENS} shown)")
            return data, {"kind": "tokens", "caption": caption, "scale": scale, "cmap": CMAP,
                          "tokens": [{"text": str(t), "pad": False, "score": float(s)} for t, s in zip(tokens, scores)]}
        names = e.tokens or e.feature_names
        labels = [str(n) for n in names] if names is not None and len(names) == len(scores) else \
            [str(i) for i in range(len(scores))]
        shown = min(len(scores), MAX_ROWS)
        rows = [{"label": label, "value": float(v)} for label, v in zip(labels[:shown], scores[:shown])]
        return data, {"kind": "table", "caption": f"attribution per feature ({len(scores)})" +
                      ("" if shown == len(scores) else f", first {shown} shown"),
                      "rows": rows, "domain": [-scale, scale], "scale": scale, "cmap": CMAP}

    def _describe(self, e: Explanation) -> str:
        layer = f" @ {e.layer}" if e.layer else ""
        return f"{e.method}{layer} · target {self._name(e.target)} · predicted {self._name(e.prediction)}"

    def _class_names(self) -> Sequence[str] | Mapping[int, str] | None:
        names = getattr(getattr(self.state, "options", None), "class_names", None)
        if names is None and self.explanation is not None:
            names = self.explanation.class_names
        return names

    def _name(self, index: int | None) -> str:
        names = self._class_names()
        if index is None:
            return "-"
        try:
            return f"{index} ({names[index]})" if names is not None else str(index)
        except (KeyError, IndexError):
            return str(index)

    def _sync_targets(self, classes: int) -> None:
        if classes == self._classes:
            return
        self._classes = classes
        current = self.target.value
        options = [("predicted", -1)] + [(self._name(i), i) for i in range(classes)]
        self._quiet = True
        try:
            self.target.options = options
            self.target.value = current if current < classes else -1
        finally:
            self._quiet = False


def runnable_methods(pipeline: Any, integer_input: bool | None) -> list[str]:
    """The methods that can run on this pipeline, the default for its input first.

    Token ids (integer inputs) have no gradient: only layer methods (on the embedding) and the
    perturbation methods run. Grad-CAM needs a convolution, layer methods a layer.
    """
    layers = [(n, m) for top in pipeline._wb_modules() for n, m in top.named_modules()]
    out = [name for name in method_names() if get_method(name).offered(layers, integer_input)]
    first = default_method(bool(integer_input))
    return sorted(out, key=lambda n: n != first)


def _integer_input(state: Any) -> bool | None:
    """Whether the forward stage's input is integer (token ids), from the current example; ``None`` if unknown."""
    from .explain import _tensors, prepare

    try:
        inputs = prepare(state.pipeline, state.input()).inputs
    except Exception:  # the tab shows the error when it explains this example
        return None
    return any(not t.is_floating_point() for t in _tensors(inputs))


def _layer_names(pipeline: Any) -> list[str]:
    names: list[str] = []
    for top in pipeline._wb_modules():
        names.extend(n for n, _ in top.named_modules() if n and n not in names)
    return names


def _default_layer(pipeline: Any, method: str) -> str | None:
    """Grad-CAM: the last conv layer; layer integrated gradients: the first embedding."""
    found = get_method(method).default_layer(
        (n, m) for top in pipeline._wb_modules() for n, m in top.named_modules() if n)
    return found[0] if found is not None else None


def _parse_shape(text: str) -> tuple[int, ...] | None:
    text = text.strip()
    if not text:
        return None
    try:
        shape = tuple(int(p) for p in text.replace(",", "x").replace(" ", "").split("x") if p)
    except ValueError:
        raise ValueError(f"reshape {text!r}: write the image size as HxW, e.g. 8x8") from None
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"reshape {text!r}: write the image size as HxW, e.g. 8x8")
    return shape
