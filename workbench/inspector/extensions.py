"""Extra inspector views: the extension point other features (attribution, ...) plug into.

A view is registered under a name with a *factory*; every inspector created afterwards shows it as a
tab next to "Output". The factory is called with the :class:`~workbench.inspector.InspectorState`
(``state.pipeline``, ``state.inputs``, ``state.example``, ``state.compare``, ``state.step``,
``state.input()``, ``state.trace()``, ``state.value()``, ...) when the tab is first shown.

- If it returns a :class:`View`, that object is kept: its ``widget`` is shown, and its
  ``update(state)`` is called after every change of step or example while the tab is visible (and once
  when the tab is shown again after changes). Use this for views with their own controls, which must
  survive a change of example.
- Otherwise the factory is called again after each change, and what it returns replaces the tab's
  content: an ipywidgets widget, a matplotlib ``Figure`` (shown as a PNG), or an HTML string.

A view may change the selection itself (``state.select_example(i)``, ``state.set_examples(...)``);
the inspector follows. An exception in a view is shown in its tab, and the other tabs keep working.

>>> import ipywidgets as widgets
>>> from workbench.inspector import register_view, unregister_view, View
>>> class InputView(View):
...     def __init__(self, state):
...         self.widget = widgets.HTML()
...     def update(self, state):
...         self.widget.value = f"<pre>{state.input()!r}</pre>"
>>> register_view("input", InputView)
>>> unregister_view("input")
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["View", "register_view", "unregister_view", "registered_views", "ViewFactory"]

ViewFactory = Callable[[Any], Any]

_VIEWS: dict[str, ViewFactory] = {}


class View:
    """A stateful extra view: build controls in ``__init__(state)``, redraw in ``update(state)``.

    Subclasses set ``self.widget`` (any ipywidgets widget) and override :meth:`update`.
    """

    widget: Any

    def update(self, state: Any) -> None:
        """Redraw for the state's current example and step (called after each change)."""


def register_view(name: str, factory: ViewFactory) -> None:
    """Add the view ``name`` (a tab) to inspectors created from now on; re-registering replaces it."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a view needs a non-empty name, got {name!r}")
    if name == "Output":
        raise ValueError("'Output' is the inspector's own view; choose another name")
    if not callable(factory):
        raise TypeError(f"the factory of view {name!r} must be callable (state -> View, widget, Figure "
                        f"or HTML), got {type(factory).__name__}")
    _VIEWS[name] = factory


def unregister_view(name: str) -> None:
    """Remove the view ``name``; ``KeyError`` naming the registered views when there is none."""
    try:
        del _VIEWS[name]
    except KeyError:
        raise KeyError(f"no inspector view {name!r}; registered: {sorted(_VIEWS) or 'none'}") from None


def registered_views() -> dict[str, ViewFactory]:
    """The registered views, by name, in registration order."""
    return dict(_VIEWS)
