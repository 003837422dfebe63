"""The inspector widget: ipywidgets pickers wired to an :class:`InspectorState`, and a view drawn in the browser.

Every control writes to the state, and the widget redraws from the state after each change, so
what it shows is exactly what the state computes (and a view or a line of Python that changes the
state moves the widget too). The chosen step's output is drawn by :class:`ViewCanvas` (canvas, SVG
and HTML in the browser, from JSON and binary arrays; see :mod:`workbench.inspector.payload`), so it
is crisp at any size, follows the notebook's theme and shows values on hover.

>>> from workbench import inspect
>>> w = inspect(pl, inputs)          # doctest: +SKIP
>>> w.state.select_step("conv1")     # doctest: +SKIP
"""

from __future__ import annotations

import html
import traceback
from typing import Any, Mapping, Sequence

import ipywidgets as widgets
from matplotlib.figure import Figure

from .canvas import ViewCanvas
from .extensions import View, ViewFactory, registered_views
from .payload import inspector_view
from .state import InspectorState
from .views import figure_png

__all__ = ["Inspector"]

_STAGE_TAGS = {"preprocess": "pre ", "forward": "fwd ", "postprocess": "post"}
_NBSP = "\u00a0"


class Inspector(widgets.VBox):
    """The widget; ``inspector.state`` is the :class:`InspectorState` it shows, ``inspector.canvas``
    the :class:`ViewCanvas` that draws the chosen step's output."""

    def __init__(self, state: InspectorState, views: Mapping[str, ViewFactory] | None = None):
        self.state = state
        self._syncing = False
        self._view_stale = True
        n = len(state.inputs)
        self.step_picker = widgets.Select(options=[(self._step_text(s), s.key) for s in state.steps],
                                          value=state.step.key, rows=min(12, len(state.steps)),
                                          layout=widgets.Layout(width="auto"))
        self.step_picker.add_class("wb-steps")
        narrow = {"description_width": "initial"}
        self.example_picker = widgets.BoundedIntText(value=state.example, min=0, max=n - 1, description="example",
                                                     style=narrow, layout=widgets.Layout(width="150px"))
        self.ranked_picker = widgets.Dropdown(options=[], description="ranked", style=narrow,
                                              layout=widgets.Layout(width="auto", max_width="100%", display="none"))
        self.compare_toggle = widgets.Checkbox(value=False, description="compare with", indent=False,
                                               layout=widgets.Layout(width="auto"))
        self.compare_picker = widgets.BoundedIntText(value=min(1, n - 1), min=0, max=n - 1,
                                                     layout=widgets.Layout(width="80px"))
        self.part_picker = widgets.Dropdown(options=[], description="part", style=narrow,
                                            layout=widgets.Layout(width="auto", max_width="100%", display="none"))
        self.raw_html = widgets.HTML(layout=widgets.Layout(max_width="100%", overflow="auto"))
        self.canvas = ViewCanvas(on_navigate=self._on_navigate)
        self._views: dict[str, Any] = {}
        self._view_boxes: dict[str, widgets.Box] = {}
        self._stale: set[str] = set()
        factories = dict(registered_views() if views is None else views)
        boxes: list[widgets.Widget] = [self.canvas]
        for name, factory in factories.items():
            box = widgets.VBox()
            self._view_boxes[name] = box
            self._views[name] = _Pending(factory)
            boxes.append(box)
        self.tabs = widgets.Tab(children=boxes, titles=["Output", *factories])
        self.tabs.observe(self._on_tab, "selected_index")
        legend = widgets.HTML("<span class='wb-legend'>pre · fwd · post: preprocess, forward (batched), "
                              "postprocess</span>", layout=widgets.Layout(margin="0 0 0 4px"))
        wrap = widgets.Layout(flex_flow="row wrap", align_items="center")
        pickers = widgets.VBox([
            widgets.HBox([self.example_picker, self.ranked_picker], layout=wrap),
            widgets.HBox([self.compare_toggle, self.compare_picker], layout=wrap),
            widgets.HBox([self.part_picker], layout=wrap),
        ], layout=widgets.Layout(flex="1 1 260px", min_width="0"))
        steps = widgets.VBox([self.step_picker, legend], layout=widgets.Layout(flex="1 1 320px", min_width="0",
                                                                              max_width="480px"))
        super().__init__([widgets.HBox([steps, pickers], layout=widgets.Layout(flex_flow="row wrap")),
                          self.raw_html, self.tabs])
        self.add_class("wb-inspector-widget")
        self.step_picker.observe(self._on_step, "value")
        self.example_picker.observe(self._on_example, "value")
        self.ranked_picker.observe(self._on_ranked, "value")
        self.compare_toggle.observe(self._on_compare, "value")
        self.compare_picker.observe(self._on_compare, "value")
        self.part_picker.observe(self._on_part, "value")
        self._unsubscribe = state.subscribe(self._on_state)
        self._sync_examples()
        self.refresh()

    # --- public ----------------------------------------------------------------------------------

    def set_examples(self, indices: Any, labels: Sequence[str] | None = None) -> None:
        """Feed the example picker a ranked list (see :meth:`InspectorState.set_examples`)."""
        self.state.set_examples(indices, labels)

    def export_png(self, path: str | None = None, dpi: int | None = None) -> str:
        """Write the current view as a PNG file drawn by matplotlib (for scripts); returns its path.

        In the notebook, the view's own PNG and SVG buttons save what the browser shows.
        """
        return self.state.export_png(path, dpi)

    def add_view(self, name: str, factory: ViewFactory) -> None:
        """Add a view tab to this inspector only (see :func:`register_view` for the protocol)."""
        if name in self._views or name == "Output":
            raise ValueError(f"this inspector already has a view named {name!r}")
        box = widgets.VBox()
        self._view_boxes[name] = box
        self._views[name] = _Pending(factory)
        titles = tuple(self.tabs.titles)
        self.tabs.children = (*self.tabs.children, box)
        self.tabs.titles = (*titles, name)
        self._stale.add(name)

    def close(self) -> None:
        self._unsubscribe()
        super().close()

    # --- state -> widget ---------------------------------------------------------------------------

    def _on_state(self, state: InspectorState, what: str) -> None:
        if what == "examples":  # the example change that follows (if any) redraws
            self._sync_examples()
            self._syncing = True
            try:
                if state.examples is not None and state.example in state.examples:
                    self.ranked_picker.value = state.example
            finally:
                self._syncing = False
            self._view_stale = True
            if not self.tabs.selected_index:
                self._draw_view()
            return
        self.refresh()

    def refresh(self) -> None:
        """Redraw everything from the state (called after each change)."""
        state = self.state
        self._syncing = True
        try:
            self.step_picker.value = state.step.key
            self.example_picker.value = state.example
            if state.examples is not None and state.example in state.examples:
                self.ranked_picker.value = state.example
            self.compare_toggle.value = state.compare is not None
            if state.compare is not None:
                self.compare_picker.value = state.compare
            parts = state.parts()
            self.part_picker.options = [(label, i) for i, label in enumerate(parts)]
            self.part_picker.layout.display = "" if parts else "none"
            if parts:
                self.part_picker.value = min(state.part, len(parts) - 1)
        finally:
            self._syncing = False
        indices = [state.example] + ([state.compare] if state.compare is not None else [])
        self.raw_html.value = self._raw_input_html(indices)
        self._view_stale = True
        if not self.tabs.selected_index:  # the output view is drawn only while "Output" is shown
            self._draw_view()
        self._stale = set(self._views)
        self._update_visible_view()

    def _draw_view(self) -> None:
        data, spec = inspector_view(self.state)
        self.canvas.show(data, spec)
        self._view_stale = False

    def _raw_input_html(self, indices: list[int]) -> str:
        cells = "".join(
            f"<div style='min-width:0;max-width:100%'><div style='font-size:11px;opacity:0.75'>input of "
            f"example {i}</div>{self.state.raw_html(i)}</div>" for i in indices)
        return f"<div class='workbench-raw' style='display:flex;flex-wrap:wrap;gap:4px 16px;margin:4px 0'>{cells}</div>"

    def _sync_examples(self) -> None:
        state = self.state
        self._syncing = True
        try:
            if state.examples is None:
                self.ranked_picker.options = []
                self.ranked_picker.layout.display = "none"
            else:
                labels = state.example_labels or [""] * len(state.examples)
                self.ranked_picker.options = [
                    (f"#{rank + 1}: example {i}" + (f" · {label}" if label else ""), i)
                    for rank, (i, label) in enumerate(zip(state.examples, labels))
                ]
                self.ranked_picker.layout.display = ""
        finally:
            self._syncing = False

    @staticmethod
    def _step_text(step: Any) -> str:
        indent = _NBSP * 2 * step.depth
        label = "output of the whole pipeline" if not step.path and step.module is None else step.label
        where = f".{step.module.rsplit('.', 1)[-1]} " if step.module is not None else f"{step.where} "
        if step.kind in ("batch", "unbatch"):
            label = f"══ {step.label} ══"
        return f"{_STAGE_TAGS[step.stage]}│{_NBSP}{indent}{where}{label}"

    # --- widget -> state ---------------------------------------------------------------------------

    def _on_step(self, change: dict[str, Any]) -> None:
        if not self._syncing and change["new"] is not None:
            self.state.select_step(change["new"])

    def _on_example(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self.state.select_example(change["new"])

    def _on_ranked(self, change: dict[str, Any]) -> None:
        if not self._syncing and change["new"] is not None:
            self.state.select_example(change["new"])

    def _on_compare(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self.state.set_compare(self.compare_picker.value if self.compare_toggle.value else None)

    def _on_navigate(self, what: str, delta: int) -> None:
        """Arrow keys in the view: the previous/next example (in the ranked list when there is one) or step."""
        state = self.state
        if what == "step":
            keys = [s.key for s in state.steps]
            i = keys.index(state.step.key) + delta
            if 0 <= i < len(keys):
                state.select_step(keys[i])
            return
        order = state.examples if state.examples is not None and state.example in state.examples else None
        if order is not None:
            i = order.index(state.example) + delta
            if 0 <= i < len(order):
                state.select_example(order[i])
        elif 0 <= state.example + delta < len(state.inputs):
            state.select_example(state.example + delta)

    def _on_part(self, change: dict[str, Any]) -> None:
        if not self._syncing and change["new"] is not None:
            self.state.select_part(change["new"])

    # --- extra views -------------------------------------------------------------------------------

    def _on_tab(self, change: dict[str, Any]) -> None:
        if not change["new"] and self._view_stale:
            self._draw_view()
        self._update_visible_view()

    def _update_visible_view(self) -> None:
        index = self.tabs.selected_index
        if not index:
            return
        name = list(self._view_boxes)[index - 1]
        if name in self._stale:
            self._stale.discard(name)
            self.update_view(name)

    def update_view(self, name: str) -> None:
        """Build or refresh the extra view ``name`` now (the inspector does this for the visible tab)."""
        box = self._view_boxes[name]
        view = self._views[name]
        try:
            if isinstance(view, _Pending):
                result = view.factory(self.state)
                if isinstance(result, View):
                    self._views[name] = view = result
                    box.children = (view.widget,)
                else:
                    box.children = (_as_widget(result),)
                    return
                view.update(self.state)
                return
            view.update(self.state)
        except Exception:
            box.children = (widgets.HTML(
                f"<pre style='color:#b00;white-space:pre-wrap'>view {html.escape(name)!s} failed:\n"
                f"{html.escape(traceback.format_exc(limit=6))}</pre>"),)
            if isinstance(view, View):  # keep its controls for the next try
                box.children = (view.widget, *box.children)

    def view(self, name: str) -> Any:
        """The extra view ``name``: its :class:`View` object, or the content its factory last returned."""
        if name not in self._views:
            raise KeyError(f"no view {name!r} in this inspector; views: {list(self._views)}")
        if isinstance(self._views[name], _Pending) and not self._view_boxes[name].children:
            self.update_view(name)
        view = self._views[name]
        return view if isinstance(view, View) else self._view_boxes[name].children[0]


class _Pending:
    """A view not built yet, or one rebuilt by calling its factory after each change."""

    def __init__(self, factory: ViewFactory):
        self.factory = factory


def _as_widget(result: Any) -> widgets.Widget:
    if isinstance(result, widgets.Widget):
        return result
    if isinstance(result, Figure):
        return widgets.Image(value=figure_png(result), format="png")
    if isinstance(result, str):
        return widgets.HTML(result)
    if result is None:
        return widgets.HTML("")
    out = widgets.Output()
    with out:
        from IPython.display import display

        display(result)
    return out
