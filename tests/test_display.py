"""Text, HTML and JSON displays of a pipeline."""

import json

import torch

from workbench import batch, identity, transform, unbatch
from workbench.display import MIME_TYPE, describe

nn = transform(torch.nn)


@transform
def tokenize(x):
    return x


def sample():
    model = nn.Linear(4, 2) - "head"
    return tokenize >> (identity + tokenize) - "both" >> batch >> model >> unbatch >> transform(str)


def test_describe_tree_has_kinds_stages_and_params():
    tree = describe(sample())
    assert tree["kind"] == "compose" and tree["params"] == 10
    kinds = [c["kind"] for c in tree["children"]]
    assert kinds == ["step", "rollout", "batch", "step", "unbatch", "step"]
    stages = [c["stage"] for c in tree["children"]]
    assert stages == ["preprocess", "preprocess", "preprocess", "forward", "forward", "postprocess"]
    assert tree["children"][1]["name"] == "both" and len(tree["children"][1]["children"]) == 2
    head = tree["children"][3]
    assert head["label"] == "head" and head["params"] == 10 and head["type"] == "Linear"
    json.dumps(tree)  # JSON-able


def test_text_repr_is_readable():
    text = repr(sample())
    lines = text.splitlines()
    assert lines[0] == "compose · 6 steps · 10 params"
    assert "├─ [0] tokenize" in lines[1]
    assert any("══ batch ══" in line for line in lines)
    assert any("[3] head  (10 params)" in line for line in lines)
    assert lines[-1] == "└─ [5] str"


def test_html_and_mimebundle():
    pl = sample()
    html = pl._repr_html_()
    assert html.startswith('<div class="workbench-pipeline"') and "head" in html and "batch" in html
    bundle = pl._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", MIME_TYPE}
    assert bundle[MIME_TYPE]["version"] == 1
    assert bundle[MIME_TYPE]["root"] == describe(pl)
    assert bundle["text/plain"] == repr(pl)


def test_html_escapes_labels():
    pl = transform(lambda x: x < 3) >> identity
    assert "x &lt; 3" in pl._repr_html_()
