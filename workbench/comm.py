"""The kernel side of the JupyterLab "Pipelines" panel: a comm that pushes the registry to the panel.

After every executed cell (IPython's ``post_run_cell`` event, so no polling) the kernel sends each
open comm the pipelines in :mod:`workbench.registry`, when they changed since the last message::

    {"type": "pipelines", "pipelines": [
        {"name": "classifier", "root": <describe(pipeline)>, "steps": 5, "params": 36,
         "device": "cpu", "stages": {"preprocess": ["to_tensor"], "forward": ["Linear(...)"],
                                     "postprocess": ["argmax"]},
         "stale": [{"name": "encode", "kind": "function", "defined_in": "cell In[4]",
                    "redefined_in": "cell In[9]", "message": "..."}],
         "export_path": "classifier-export.wb"}]}

``stale`` lists the notebook definitions the pipeline holds that were redefined since
(:mod:`workbench.staleness`); ``export_path`` is a default for the Export dialog that collides
with no existing file.

The panel may ask, each request carrying a ``request_id`` that the answer repeats:

- ``{"type": "refresh"}``: send the list now;
- ``{"type": "source", "name": N}``: the text ``%wb_deps N`` prints (``workbench.bundle.dependency_source``);
- ``{"type": "export", "name": N, "path": P, "overwrite": false}``: save ``N`` as a bundle at ``P``.

Answers are ``{"type": ..., "request_id": ..., "ok": true, ...}`` or ``{"ok": false, "error": "<message>"}``.

``%load_ext workbench`` (automatic on ``import workbench`` in IPython) calls :func:`install`::

    import workbench.comm
    workbench.comm.install(get_ipython())
"""

from __future__ import annotations

import json
import os
from typing import Any

from . import registry
from .display import describe
from .pipeline import Transform

__all__ = ["TARGET", "install", "uninstall", "snapshot", "handle_request", "export_path"]

TARGET = "workbench.pipelines"

_LEAF_KINDS = ("step",)


class _Link:
    """The comms open in one shell, and what each was last sent."""

    def __init__(self, ip: Any) -> None:
        self.ip = ip
        self.comms: dict[str, Any] = {}
        self.last_sent: dict[str, str] = {}

    def on_open(self, comm: Any, open_msg: dict[str, Any]) -> None:
        self._add(comm)
        self.push(comm, force=True)

    def _add(self, comm: Any) -> None:
        self.comms[comm.comm_id] = comm
        comm.on_msg(lambda msg, comm=comm: self.on_msg(comm, msg))
        comm.on_close(lambda msg, comm=comm: self._forget(comm))

    def _forget(self, comm: Any) -> None:
        self.comms.pop(comm.comm_id, None)
        self.last_sent.pop(comm.comm_id, None)

    def on_msg(self, comm: Any, msg: dict[str, Any]) -> None:
        data = msg.get("content", {}).get("data", {}) or {}
        if data.get("type") == "refresh":
            self.push(comm, force=True)
            return
        answer = handle_request(data, self.ip)
        comm.send(answer)
        if answer.get("type") == "export" and answer.get("ok"):  # a new file: the default export path moves on
            for other in list(self.comms.values()):
                self.push(other, force=False)

    def post_run_cell(self, result: Any = None) -> None:
        if not self.comms:
            return
        for comm in list(self.comms.values()):
            self.push(comm, force=False)

    def push(self, comm: Any, *, force: bool) -> None:
        pipelines = snapshot(fresh=force)
        # Unchanged since the last message: same pipeline objects, devices, stale definitions, export paths.
        key = repr((_GENERATION[0], [(p["name"], p["device"], p["stale"], p["export_path"]) for p in pipelines]))
        if not force and self.last_sent.get(comm.comm_id) == key:
            return
        self.last_sent[comm.comm_id] = key
        comm.send(json.loads(json.dumps({"type": "pipelines", "pipelines": pipelines}, default=str)))


_LINKS: dict[int, _Link] = {}


def install(ip: Any) -> None:
    """Register the comm target in shell ``ip``, push after every cell, and announce the list.

    Safe to call twice. Outside a kernel (a plain IPython terminal) there is nothing to talk to,
    so nothing is installed.
    """
    if id(ip) in _LINKS:
        return
    kernel = getattr(ip, "kernel", None)
    if kernel is None:
        return
    from comm import create_comm, get_comm_manager

    link = _Link(ip)
    get_comm_manager().register_target(TARGET, link.on_open)
    ip.events.register("post_run_cell", link.post_run_cell)
    _LINKS[id(ip)] = link
    # A panel already following this kernel (opened before workbench was imported) learns of it now.
    comm = create_comm(target_name=TARGET, data={"type": "pipelines", "pipelines": snapshot()})
    link._add(comm)


def uninstall(ip: Any) -> None:
    """Stop pushing and close the comms of shell ``ip``."""
    link = _LINKS.pop(id(ip), None)
    if link is None:
        return
    try:
        ip.events.unregister("post_run_cell", link.post_run_cell)
    except ValueError:
        pass
    from comm import get_comm_manager

    get_comm_manager().unregister_target(TARGET, link.on_open)
    for comm in list(link.comms.values()):
        comm.close()
    link.comms.clear()


# Structure per registered pipeline, kept until the registry changes (or a "refresh" asks afresh):
# describing a large pipeline after every cell would cost more than the cell tracking itself.
_STRUCTURE: dict[str, tuple[Any, ...]] = {}  # name -> (pipeline, structure[, definitions it holds])
_GENERATION = [0]  # bumped whenever a structure is described anew


def _forget_structure(names: list[str]) -> None:
    _STRUCTURE.clear()


registry.subscribe(_forget_structure)


def snapshot(fresh: bool = False) -> list[dict[str, Any]]:
    """What the panel shows for every registered pipeline, in registration order.

    The structure of each pipeline is described once per registration (``fresh=True`` describes
    every pipeline again); the device is read every time, as ``pl.to(device)`` changes it in place.
    """
    if fresh:
        _STRUCTURE.clear()
    return [_describe_pipeline(name, pipeline) for name, pipeline in registry.items()]


def _describe_pipeline(name: str, pipeline: Transform) -> dict[str, Any]:
    cached = _STRUCTURE.get(name)
    if cached is None or cached[0] is not pipeline:
        _GENERATION[0] += 1
        cached = (pipeline, _structure(pipeline))
        _STRUCTURE[name] = cached
    try:
        device = str(pipeline.device)
    except Exception as exc:  # a layer whose parameters cannot be read: say so rather than hide the pipeline
        device = f"unknown ({type(exc).__name__})"
    from . import tracking
    from .staleness import definitions_held, stale_among

    if len(cached) == 2:  # the definitions it holds, found once per registration like its structure
        cached = _STRUCTURE[name] = (*cached, definitions_held(pipeline))
    stale = stale_among(cached[2]) if tracking.is_active() else []
    return {"name": name, **cached[1], "device": device,
            "stale": [s.as_json() for s in stale], "export_path": export_path(name)}


def export_path(name: str, directory: str = ".") -> str:
    """A default path for the panel's Export dialog that no file or bundle uses yet.

    ``NAME-export.wb``, else ``NAME-export-2.wb``... (never ``NAME.wb``, the name a notebook's own
    ``%wb_save`` cell most likely writes).
    """
    candidate, n = f"{name}-export.wb", 2
    while os.path.exists(os.path.join(directory, candidate)):
        candidate, n = f"{name}-export-{n}.wb", n + 1
    return candidate


def _structure(pipeline: Transform) -> dict[str, Any]:
    root = describe(pipeline)
    stages: dict[str, list[str]] = {"preprocess": [], "forward": [], "postprocess": []}
    steps = 0
    for node in _leaves(root):
        stages[node["stage"]].append(node["label"])
        steps += 1
    return {"root": root, "steps": steps, "params": root["params"], "stages": stages}


def _leaves(node: dict[str, Any]):
    if not node["children"]:
        if node["kind"] in _LEAF_KINDS:
            yield node
        return
    for child in node["children"]:
        yield from _leaves(child)


def handle_request(data: dict[str, Any], ip: Any = None) -> dict[str, Any]:
    """Answer one "source" or "export" request from the panel; errors become ``ok: false`` answers."""
    kind = data.get("type")
    answer: dict[str, Any] = {"type": kind, "request_id": data.get("request_id")}
    try:
        if kind == "source":
            pipeline = registry.get(_name(data))
            from .bundle import dependency_source

            answer.update(ok=True, name=data["name"], text=dependency_source(pipeline))
        elif kind == "export":
            name = _name(data)
            pipeline = registry.get(name)
            path = data.get("path")
            if not isinstance(path, str) or not path.strip():
                raise ValueError(f"export of {name!r}: no path given")
            path = os.path.expanduser(path.strip())
            overwrite = data.get("overwrite", False) is True
            if os.path.exists(path) and not overwrite:
                raise FileExistsError(f"{path} already exists; tick \"Replace an existing bundle\" to replace it, "
                                      "or choose another path")
            from .bundle import save

            saved = save(pipeline, path, overwrite=overwrite)
            answer.update(ok=True, name=name, path=str(saved if saved is not None else path))
        else:
            raise ValueError(f"unknown request type {kind!r}; expected 'refresh', 'source' or 'export'")
    except KeyError as exc:
        answer.update(ok=False, error=str(exc.args[0]) if exc.args else repr(exc))
    except Exception as exc:
        answer.update(ok=False, error=f"{type(exc).__name__}: {exc}")
    return answer


def _name(data: dict[str, Any]) -> str:
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("the request names no pipeline")
    return name
