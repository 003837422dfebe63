"""The widget is built from the state: pickers drive the state, the display follows it; extra views."""

import ipywidgets as widgets
import pytest
import torch
from ipywidgets.embed import embed_minimal_html
from matplotlib.figure import Figure

from workbench import inspect, transform
from workbench.inspector import Inspector, View, register_view, unregister_view

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@transform
def maps(i):
    g = torch.Generator().manual_seed(int(i))
    return torch.randn(6, 4, 4, generator=g) + int(i)


@transform
def pool(x):
    return x.mean((1, 2))


def pipeline():
    return maps - "maps" >> pool - "scores" >> transform(lambda s: f"best {int(s.argmax())}") - "text"


def fmt(v):
    return f"{v:.4g}"


def columns(w):
    """The columns the browser is asked to draw (one per shown example)."""
    return w.canvas.spec["columns"]


def summary(w, column=0):
    return dict(columns(w)[column]["summary"])


def block(w, kind, column=0):
    return next(b for b in columns(w)[column]["blocks"] if b["kind"] == kind)


def test_pickers_are_built_from_the_state_and_drive_it():
    w = inspect(pipeline(), list(range(30)), step="maps")
    assert isinstance(w, Inspector) and isinstance(w, widgets.VBox)
    assert [value for _, value in w.step_picker.options] == [s.key for s in w.state.steps]
    assert w.step_picker.value == w.state.find_step("maps").key
    assert "[0] maps" in w.step_picker.label and w.step_picker.label.startswith("fwd")  # no markers: all forward
    assert summary(w)["mean"] == fmt(float(maps.fn(0).mean()))
    assert block(w, "grid")["caption"] == "showing 6 of 6 channels"
    before = w.canvas.spec

    w.example_picker.value = 12
    assert w.state.example == 12
    assert w.canvas.spec != before and summary(w)["mean"] == fmt(float(maps.fn(12).mean()))
    assert columns(w)[0]["title"].startswith("example 12")

    w.step_picker.value = w.state.find_step("scores").key
    assert w.state.step.name == "scores"
    top = int(maps.fn(12).mean((1, 2)).argmax())
    assert block(w, "bars")["rows"][0]["label"] == str(top) and block(w, "bars")["caption"] == "top 5 of 6"

    w.step_picker.value = w.state.find_step("text").key
    assert block(w, "text")["text"] == f"best {top}" and summary(w)["type"] == "str"


def test_state_changes_from_python_move_the_widget():
    w = inspect(pipeline(), list(range(30)))
    w.state.select_step("scores")
    w.state.select_example(7)
    assert w.step_picker.value == w.state.find_step("scores").key and w.example_picker.value == 7
    w.state.set_compare(9)
    assert w.compare_toggle.value and w.compare_picker.value == 9
    assert [c["title"].split(" · ")[0] for c in columns(w)] == ["example 7", "example 9"]  # one title each
    left, right = block(w, "bars", 0), block(w, "bars", 1)
    assert left["domain"] == right["domain"]  # compared on one scale
    assert min(r["value"] for r in left["rows"] + right["rows"]) >= left["domain"][0]
    assert max(r["value"] for r in left["rows"] + right["rows"]) <= left["domain"][1]
    w.compare_toggle.value = False
    assert w.state.compare is None and len(columns(w)) == 1


def test_ranked_examples_feed_the_picker():
    w = inspect(pipeline(), list(range(30)))
    assert w.ranked_picker.layout.display == "none"
    w.set_examples([21, 4, 9], labels=["loss 3.2", "loss 2.0", "loss 1.1"])
    assert w.ranked_picker.layout.display == ""
    assert [label for label, _ in w.ranked_picker.options][0] == "#1: example 21 · loss 3.2"
    assert w.state.example == 21 and w.example_picker.value == 21
    w.ranked_picker.value = 9
    assert w.state.example == 9 and "loss 1.1" in columns(w)[0]["title"]


def test_export_png_writes_the_current_view_for_scripts(tmp_path):
    w = inspect(pipeline(), list(range(5)), step="maps")
    assert (tmp_path / "view.png").exists() is False
    assert w.export_png(str(tmp_path / "view.png")).endswith("view.png")
    assert (tmp_path / "view.png").read_bytes()[:8] == PNG_SIGNATURE
    with pytest.raises(FileNotFoundError, match="does not exist"):
        w.export_png(str(tmp_path / "no" / "such" / "dir.png"))
    assert not (tmp_path / "no").exists()


def test_widget_state_serializes_for_the_frontend(tmp_path):
    w = inspect(pipeline(), list(range(5)))
    embed_minimal_html(str(tmp_path / "page.html"), views=[w], title="inspector")
    page = (tmp_path / "page.html").read_text()
    assert "application/vnd.jupyter.widget-state+json" in page and "SelectModel" in page
    assert "AnyModel" in page and "\"columns\"" in page  # the view's description travels with its state


def test_function_views_are_rebuilt_after_each_change():
    calls = []

    def input_view(state):
        calls.append(state.example)
        return f"<b>input of example {state.example}: {state.input()}</b>"

    register_view("input", input_view)
    w = inspect(pipeline(), list(range(10)))
    assert w.tabs.titles == ("Output", "input") and calls == []  # built lazily
    w.tabs.selected_index = 1
    assert "input of example 0: 0" in w.view("input").value
    w.example_picker.value = 3
    assert "input of example 3: 3" in w.view("input").value and calls == [0, 3]
    w.tabs.selected_index = 0
    w.example_picker.value = 4
    assert calls == [0, 3]  # hidden views are not recomputed
    w.tabs.selected_index = 1
    assert calls == [0, 3, 4]


def test_stateful_views_keep_their_controls_and_get_updates():
    built = []

    class Overlay(View):
        def __init__(self, state):
            built.append(self)
            self.method = widgets.Dropdown(options=["saliency", "integrated_gradients"], value="saliency")
            self.out = widgets.HTML()
            self.widget = widgets.VBox([self.method, self.out])
            self.seen = []

        def update(self, state):
            self.seen.append((state.example, state.step.where))
            self.out.value = f"{self.method.value} on example {state.example}"

    register_view("attribution", Overlay)
    w = inspect(pipeline(), list(range(10)))
    w.tabs.selected_index = 1
    view = w.view("attribution")
    view.method.value = "integrated_gradients"
    w.state.select_example(5)
    w.state.select_step("scores")
    assert len(built) == 1 and view.method.value == "integrated_gradients"
    assert view.out.value == "integrated_gradients on example 5"
    assert view.seen[-1] == (5, "[1]")


def test_a_failing_view_shows_its_error_and_the_rest_keeps_working():
    def broken(state):
        raise RuntimeError("attribution needs a target")

    register_view("broken", broken)
    w = inspect(pipeline(), list(range(4)))
    w.tabs.selected_index = 1
    assert "attribution needs a target" in w.view("broken").value
    w.example_picker.value = 2
    w.tabs.selected_index = 0
    assert w.state.example == 2 and columns(w)[0]["title"].startswith("example 2")


def test_figure_views_and_per_inspector_views():
    w = inspect(pipeline(), list(range(4)), step="maps")

    def hist(state):
        fig = Figure()
        fig.add_subplot().hist(state.value().flatten().numpy())
        return fig

    w.add_view("hist", hist)
    assert w.tabs.titles[-1] == "hist"
    w.tabs.selected_index = 1
    assert bytes(w.view("hist").value[:8]) == PNG_SIGNATURE
    with pytest.raises(ValueError, match="already has a view named 'hist'"):
        w.add_view("hist", hist)


def test_register_view_validates_and_unregisters():
    with pytest.raises(TypeError, match="must be callable"):
        register_view("x", 42)
    with pytest.raises(ValueError, match="'Output' is the inspector's own view"):
        register_view("Output", lambda s: "")
    register_view("x", lambda s: "")
    unregister_view("x")
    with pytest.raises(KeyError, match="no inspector view 'x'"):
        unregister_view("x")


def test_the_output_view_is_drawn_only_while_its_tab_is_shown():
    register_view("other", lambda state: "<i>other</i>")
    try:
        w = inspect(pipeline(), list(range(10)), step="maps")
    finally:
        unregister_view("other")
    first = w.canvas.spec
    w.tabs.selected_index = 1
    w.example_picker.value = 6
    assert w.canvas.spec == first  # not redrawn while hidden
    w.tabs.selected_index = 0
    assert w.canvas.spec != first and summary(w)["mean"] == fmt(float(maps.fn(6).mean()))
