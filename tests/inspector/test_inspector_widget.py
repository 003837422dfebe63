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


def test_pickers_are_built_from_the_state_and_drive_it():
    w = inspect(pipeline(), list(range(30)), step="maps")
    assert isinstance(w, Inspector) and isinstance(w, widgets.VBox)
    assert [value for _, value in w.step_picker.options] == [s.key for s in w.state.steps]
    assert w.step_picker.value == w.state.find_step("maps").key
    assert "[0] maps" in w.step_picker.label and w.step_picker.label.startswith("fwd")  # no markers: all forward
    assert fmt(float(maps.fn(0).mean())) in w.summary_html.value
    assert "showing 6 of 6 channels" in w.detail_html.value
    before = w.summary_html.value

    w.example_picker.value = 12
    assert w.state.example == 12
    assert w.summary_html.value != before and fmt(float(maps.fn(12).mean())) in w.summary_html.value
    assert "example 12" in w.title_html.value

    w.step_picker.value = w.state.find_step("scores").key
    assert w.state.step.name == "scores"
    top = int(maps.fn(12).mean((1, 2)).argmax())
    assert "workbench-topk" in w.detail_html.value and f"<td>{top}</td>" in w.detail_html.value
    assert bytes(w.image.value[:8]) == PNG_SIGNATURE

    w.step_picker.value = w.state.find_step("text").key
    assert f"best {top}" in w.detail_html.value and "text" in w.summary_html.value


def test_state_changes_from_python_move_the_widget():
    w = inspect(pipeline(), list(range(30)))
    w.state.select_step("scores")
    w.state.select_example(7)
    assert w.step_picker.value == w.state.find_step("scores").key and w.example_picker.value == 7
    w.state.set_compare(9)
    assert w.compare_toggle.value and w.compare_picker.value == 9
    assert "example 7" in w.title_html.value and "example 9" in w.title_html.value
    assert w.summary_html.value.count("workbench-summary") == 2
    w.compare_toggle.value = False
    assert w.state.compare is None and w.summary_html.value.count("workbench-summary") == 1


def test_ranked_examples_feed_the_picker():
    w = inspect(pipeline(), list(range(30)))
    assert w.ranked_picker.layout.display == "none"
    w.set_examples([21, 4, 9], labels=["loss 3.2", "loss 2.0", "loss 1.1"])
    assert w.ranked_picker.layout.display == ""
    assert [label for label, _ in w.ranked_picker.options][0] == "#1: example 21 · loss 3.2"
    assert w.state.example == 21 and w.example_picker.value == 21
    w.ranked_picker.value = 9
    assert w.state.example == 9 and "loss 1.1" in w.title_html.value


def test_export_button_writes_the_current_view(tmp_path):
    w = inspect(pipeline(), list(range(5)), step="maps")
    w.export_path.value = str(tmp_path / "view.png")
    w.export_button.click()
    assert (tmp_path / "view.png").read_bytes()[:8] == PNG_SIGNATURE
    assert "wrote" in w.export_status.value
    assert w.export_png(str(tmp_path / "again.png")).endswith("again.png")


def test_widget_state_serializes_for_the_frontend(tmp_path):
    w = inspect(pipeline(), list(range(5)))
    embed_minimal_html(str(tmp_path / "page.html"), views=[w], title="inspector")
    page = (tmp_path / "page.html").read_text()
    assert "application/vnd.jupyter.widget-state+json" in page and "SelectModel" in page


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
    assert w.state.example == 2 and "example 2" in w.title_html.value


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


def test_the_output_figure_is_drawn_only_while_its_tab_is_shown():
    register_view("other", lambda state: "<i>other</i>")
    w = inspect(pipeline(), list(range(10)), step="maps")
    first = bytes(w.image.value)
    w.tabs.selected_index = 1
    w.example_picker.value = 6
    assert bytes(w.image.value) == first  # not redrawn while hidden...
    assert fmt(float(maps.fn(6).mean())) in w.summary_html.value  # ...but the summary is current
    w.tabs.selected_index = 0
    assert bytes(w.image.value) != first and bytes(w.image.value[:8]) == PNG_SIGNATURE


def test_a_failed_export_from_the_button_is_reported_under_it(tmp_path):
    w = inspect(pipeline(), list(range(3)))
    w.export_path.value = str(tmp_path / "no" / "such" / "dir.png")
    w.export_button.click()  # does not raise into the frontend's callback
    assert "FileNotFoundError" in w.export_status.value and "does not exist" in w.export_status.value
    assert not (tmp_path / "no").exists()
