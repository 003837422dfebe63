"""The composite protocol: every composite declares its shape, how it runs its children and how it is
made again, and everything that shows, traces or saves a pipeline reads those from the class.

A small composite defined only here (``Fallback``) goes through the displays, ``workbench info``'s
structure, the JSON for the JupyterLab diagram, the trace and the error notes without any of them
knowing it.
"""

import json
from pathlib import Path

import pytest
import torch

import workbench
from workbench import IfEval, IfInfer, IfTrain, Map, Parallel, Rollout, Try, batch, transform, unbatch
from workbench import pipeline as P
from workbench.bundle.info import structure_text
from workbench.display import MIME_TYPE, describe, to_html, to_text
from workbench.inspector import pipeline_steps, trace


def _composites(cls=P._Composite):
    for sub in cls.__subclasses__():
        if not sub.__name__.startswith("_"):
            yield sub
        yield from _composites(sub)


def plus_one(x):
    return x + 1


def double(x):
    return 2 * x


def halve_if_even(x):
    return x // 2 if x % 2 == 0 else None


# One instance of each composite kind workbench has, with an input it runs on.
EXAMPLES = {
    P.Compose: (transform(plus_one) >> transform(double), 3),
    Rollout: (transform(plus_one) + transform(double), 3),
    Parallel: (transform(plus_one) / transform(double), (3, 4)),
    Map: (~transform(plus_one), [1, 2]),
    P.IfMode: (P.IfMode(transform(plus_one)), 3),
    IfTrain: (IfTrain(transform(plus_one), transform(double)), 3),
    IfEval: (IfEval(transform(plus_one)), 3),
    IfInfer: (IfInfer(transform(plus_one)), 3),
    Try: (Try(transform(int), transform(len), ValueError, transform(double), transform(plus_one)), "twelve"),
}


def test_every_composite_of_workbench_declares_the_protocol_and_is_made_again_from_its_arguments():
    own = {cls for cls in _composites() if cls.__module__ == "workbench.pipeline"}
    assert own == set(EXAMPLES), "each composite needs an example here"
    for cls, (node, x) in EXAMPLES.items():
        assert type(node) is cls
        shape = cls._wb_shape
        assert isinstance(shape, P._Shape) and shape.kind and shape.symbol and shape.layout in ("column", "row")
        assert cls._wb_run is not P._Composite._wb_run, cls
        args, kwargs = node._wb_arguments()
        again = cls(*args, **kwargs)
        assert again(x) == node(x) and describe(again) == describe(node), cls
    kinds = [cls._wb_shape.kind for cls in EXAMPLES if cls not in (IfTrain, IfEval, IfInfer)]
    assert len(set(kinds)) == len(kinds)  # a kind names one composite (the If* share IfMode's)


def test_a_composite_without_its_shape_or_its_run_is_refused_when_defined():
    with pytest.raises(TypeError, match="Shapeless must declare _wb_shape"):
        class Shapeless(P._Composite):
            def _wb_run(self, x, fns, note=None):
                return x
    with pytest.raises(TypeError, match="Idle must say how it runs its children"):
        class Idle(P._Composite):
            _wb_shape = P._Shape("idle", "…", "row")
    with pytest.raises(ValueError, match="layout must be 'column' or 'row'"):
        P._Shape("spiral", "@", "spiral")
    with pytest.raises(ValueError, match="taken by leaves"):
        P._Shape("step", "s", "row")


class Fallback(P._Composite):
    """``Fallback(first, otherwise)``: ``first(x)``, or ``otherwise(x)`` when that is ``None``."""

    _wb_shape = P._Shape("fallback", "??", "row", ("first", "otherwise"))

    def __init__(self, first, otherwise):
        super().__init__([transform(first), transform(otherwise)])

    def _wb_arguments(self):
        return tuple(self._children), {}

    def _wb_run(self, x, fns, note=None):
        i = 0
        try:
            out = fns[0](x)
            if out is None:
                if note is not None:
                    note("first gave None")
                i = 1
                out = fns[1](x)
            return out
        except Exception as exc:
            P._annotate(exc, self, i)
            raise


def fallback_pipeline():
    return transform(plus_one) >> Fallback(halve_if_even, double) - "safe_half" >> transform(str)


def test_a_new_composite_runs_and_is_described_from_its_class():
    pl = fallback_pipeline()
    assert pl(3) == "2" and pl(2) == "6" and pl.infer_apply(3) == "2"
    node = describe(pl)["children"][1]
    assert {k: node[k] for k in ("kind", "label", "name", "type", "symbol", "layout", "branches")} == {
        "kind": "fallback", "label": "safe_half", "name": "safe_half", "type": "Fallback",
        "symbol": "??", "layout": "row", "branches": ["first", "otherwise"]}
    assert [c["label"] for c in node["children"]] == ["halve_if_even", "double"]
    unnamed = describe(Fallback(halve_if_even, double))
    assert unnamed["label"] == "fallback" and to_text(Fallback(halve_if_even, double)).startswith("fallback · 2 branches")


def test_a_new_composite_shows_in_text_html_info_and_the_diagram_json():
    pl = transform(plus_one) >> Fallback(halve_if_even, double) >> transform(str)
    text = to_text(pl)
    assert "├─ [1] ?? fallback" in text and "│  ├─ [0] halve_if_even" in text and "│  └─ [1] double" in text
    assert "??" in to_html(pl) and "halve_if_even" in to_html(pl)
    info = structure_text(json.loads(json.dumps(describe(pl))))  # as stored in a bundle's manifest
    assert "├─ [1] ?? fallback   [forward]" in info.splitlines()
    payload = json.loads(json.dumps(pl._repr_mimebundle_()[MIME_TYPE]))
    drawn = payload["root"]["children"][1]
    assert (drawn["kind"], drawn["symbol"], drawn["layout"], drawn["branches"]) == (
        "fallback", "??", "row", ["first", "otherwise"])


def test_stages_flow_through_a_new_composite_as_its_layout_says():
    pl = transform(torch.tensor) >> Fallback(transform(plus_one), transform(double)) >> batch \
        >> transform(double) >> unbatch
    stages = [c["stage"] for c in describe(pl)["children"][1]["children"]]
    assert stages == ["preprocess", "preprocess"]
    assert [(s.where, s.stage) for s in pipeline_steps(pl)][1:5] == [
        ("[0]", "preprocess"), ("[1]", "preprocess"), ("[1][0]", "preprocess"), ("[1][1]", "preprocess")]
    assert [c["stage"] for c in describe(pl)["children"]] == [
        "preprocess", "preprocess", "preprocess", "forward", "forward"]


def test_the_trace_steps_into_a_new_composite_through_its_run_hook():
    pl = fallback_pipeline()
    steps = pipeline_steps(pl)
    assert [(s.where, s.kind, s.label) for s in steps] == [
        ("(pipeline)", "compose", "compose"), ("[0]", "step", "plus_one"), ("[1]", "fallback", "safe_half"),
        ("[1][0]", "step", "halve_if_even"), ("[1][1]", "step", "double"), ("[2]", "step", "str")]
    t = trace(pl, 2)  # 3 is odd: halve_if_even gives None and double runs
    assert t.output == pl.infer_apply(2) == "6"
    assert [r.where for r in t] == ["[0]", "[1][0]", "[1][1]", "[1]", "[2]", "(pipeline)"]
    assert t[(1, 0)].output is None and t["safe_half"].output == 6 and t["safe_half"].note == "first gave None"
    t = trace(pl, 3)
    assert t["safe_half"].note is None and (1, 1) not in [r.path for r in t]


def test_an_error_inside_a_new_composite_names_the_step_in_the_trace_as_in_a_call():
    def boom(x):
        raise RuntimeError("no")

    pl = transform(plus_one) >> Fallback(halve_if_even, boom)
    with pytest.raises(RuntimeError) as called:
        pl(2)
    with pytest.raises(RuntimeError) as traced:
        trace(pl, 2)
    assert "workbench: in step [1][1] 'boom'" in called.value.__notes__[0]
    assert traced.value.__notes__[0].startswith("workbench: in step [1][1] 'boom'")


def test_bundles_write_workbench_composites_from_their_arguments(tmp_path):
    pl = Try(transform(int), transform(len), ValueError) >> (transform(double) - "twice") + transform(str) \
        >> IfTrain(transform(plus_one))
    path = tmp_path / "composites.wb"
    workbench.save(pl, path)
    source = (path / "source.py").read_text()
    assert "_wb.Try(" in source and ", ValueError, else_=_wb.identity, finally_=_wb.identity)" in source
    assert "_wb.Rollout([" in source and "_wb.IfTrain(" in source
    loaded = workbench.load(path)
    assert loaded("12") == pl("12") and loaded("twelve") == pl("twelve")
    assert describe(loaded) == describe(pl)


def test_a_new_composite_is_saved_with_its_class_and_loads_the_same(tmp_path):
    pl = fallback_pipeline()
    workbench.save(pl, tmp_path / "fallback.wb")
    source = (tmp_path / "fallback.wb" / "source.py").read_text()
    assert "class Fallback(P._Composite):" in source and "_cache" not in source
    loaded = workbench.load(tmp_path / "fallback.wb")
    assert [loaded(x) for x in (2, 3)] == [pl(x) for x in (2, 3)] == ["6", "2"]
    assert describe(loaded) == describe(pl) and trace(loaded, 2)["safe_half"].note == "first gave None"


# What the JupyterLab extension's tests draw (extension/test/described.test.ts): every kind of
# composite, one of them defined only here, and a batch variant.
DESCRIBED = Path(__file__).parent.parent / "extension" / "test" / "described.json"


def described_pipeline():
    return (transform(plus_one) >> Fallback(halve_if_even, double) + Try(transform(int), transform(len), ValueError)
            >> IfTrain(transform(plus_one)) >> batch.pad(0) >> ~transform(double) >> unbatch)


def test_the_extension_draws_what_describe_writes_today():
    written = json.loads(DESCRIBED.read_text())
    assert written == json.loads(json.dumps(described_pipeline()._repr_mimebundle_()[MIME_TYPE])), (
        f"regenerate {DESCRIBED} with: PYTHONPATH=. python tests/test_composites.py")


if __name__ == "__main__":  # rewrite the extension's fixture
    DESCRIBED.write_text(json.dumps(described_pipeline()._repr_mimebundle_()[MIME_TYPE], indent=2,
                                    ensure_ascii=False) + "\n")
