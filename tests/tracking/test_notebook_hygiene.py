"""Saving from a notebook without surprises, in one real kernel driven cell by cell.

A text classifier whose ``encode`` cell is fixed and re-run after the pipelines were built: the
magics say which pipeline holds the old definition (and both cells), ``%wb_save`` and ``%wb_deps``
say what a bundle stores and how large it is, each magic names its own overwrite flag, and
``--check`` explains how to pass a string. Bundles are loaded in fresh processes and compared.
"""

from __future__ import annotations

import os
import re

import pytest

from ._harness import Kernel, load_and_compare

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    out = tmp_path_factory.mktemp("hygiene")
    k = Kernel(env={"JPY_SESSION_NAME": str(out / "news.ipynb")})
    k.out = str(out)
    k.ok(f"import os, pickle, numpy as np, workbench\nfrom workbench import transform\nos.chdir({str(out)!r})",
         cell_id="setup")
    k.ok("VOCAB = {'striker': 0, 'scored': 1, 'rates': 2}\nTABLE = np.arange(200_000, dtype=np.float64)",
         cell_id="data")
    k.encode_cell = k.ok("def encode(s):\n    return [VOCAB[w] for w in s.split() if w in VOCAB]", cell_id="encode")
    k.ok("%%pipeline topic\ntransform(encode) >> transform(lambda ids: float(TABLE[len(ids)]))", cell_id="topic")
    yield k
    k.shutdown()


def test_check_that_is_not_an_expression_says_how_to_quote_it(kernel):
    r = kernel.run('%%pipeline topic2 --check "the striker scored"\ntransform(encode)')
    assert r.ename == "UsageError"
    assert "'the striker scored' is not a Python expression" in r.evalue
    assert "quote it inside the argument" in r.evalue
    assert '%%pipeline topic2 --check "\'the striker scored\'"' in r.evalue
    r = kernel.run("%%pipeline topic2 --check striker\ntransform(encode)")
    assert r.ename == "UsageError" and "NameError" in r.evalue
    assert "if you meant the string 'striker'" in r.evalue and '--check "\'striker\'"' in r.evalue
    r = kernel.ok('%%pipeline topic2 --check "\'the striker scored\'"\ntransform(encode)')
    assert "[0] encode -> list(2): int 0, int 1" in r.stdout


def test_wb_deps_and_wb_save_report_sizes(kernel):
    r = kernel.ok("%wb_deps topic")
    assert "def encode(s):" in r.stdout
    assert re.search(r"# TABLE\s+ndarray\s+1\.6 MB\s+step 'lambda ids: float\(TABLE\[len\(ids\)\]\)'", r.stdout), r.stdout
    assert re.search(r"# VOCAB\s+dict\s+\d+ B\s+step 'encode' \(function encode\)", r.stdout), r.stdout
    r = kernel.ok("%wb_save topic topic.wb")
    assert "saved topic to topic.wb" in r.stdout
    assert re.search(r"TABLE\s+ndarray\s+1\.6 MB", r.stdout), r.stdout


def test_each_magic_names_its_own_overwrite_flag(kernel):
    r = kernel.run("%wb_save topic topic.wb")
    assert r.ename == "UsageError"  # a one-line error, before anything is saved
    assert "topic.wb already exists; add --overwrite to replace it" in r.evalue and "overwrite=True" not in r.evalue
    r = kernel.run("%%pipeline topic --save topic.wb\ntransform(encode)")
    assert r.ename == "UsageError"
    assert "add --overwrite to the %%pipeline topic line" in r.evalue
    kernel.ok("%%pipeline topic\ntransform(encode) >> transform(lambda ids: float(TABLE[len(ids)]))")


def test_redefined_definitions_are_reported_and_saving_keeps_what_the_pipeline_holds(kernel):
    kernel.ok("trainer = transform(encode) >> transform(len)")
    fixed = kernel.ok("def encode(s):\n    return [VOCAB.get(w, -1) for w in s.lower().split()]", cell_id="encode")
    old_label = f"In[{kernel.encode_cell.execution_count}]"
    new_label = f"In[{fixed.execution_count}]"
    message = (f"function 'encode' from cell {old_label} (cell id encode) was redefined in cell {new_label} "
               "(cell id encode)")
    r = kernel.ok("%wb_deps trainer")
    assert f"warning: pipeline 'trainer' holds an old definition: {message}" in r.stdout
    r = kernel.ok("%%pipeline both\ntopic >> transform(str)")
    assert "warning: pipeline 'both' holds an old definition" in r.stdout
    r = kernel.ok("%wb_save trainer trainer.wb")
    assert message in r.stdout and "saved trainer to trainer.wb" in r.stdout
    r = kernel.ok("%%pipeline fresh\ntransform(encode) >> transform(len)")
    assert "warning" not in r.stdout
    kernel.ok("%wb_save fresh fresh.wb")
    # what each bundle holds is what its pipeline holds: the old encode skips unknown words
    kernel.ok("import pickle\nfor name, pl in [('trainer', trainer), ('fresh', fresh)]:\n"
              "    with open(name + '.pkl', 'wb') as f:\n"
              "        pickle.dump({'inputs': ['The striker SCORED x'], 'outputs': [pl.infer_apply('The striker SCORED x')]}, f)")
    assert kernel.json("[trainer.infer_apply('The striker SCORED x'), fresh.infer_apply('The striker SCORED x')]") == [1, 4]
    cases = [{"name": n, "bundle": os.path.join(kernel.out, f"{n}.wb"), "expected": os.path.join(kernel.out, f"{n}.pkl")}
             for n in ("trainer", "fresh")]
    results = load_and_compare(cases)
    assert all(r["ok"] for r in results.values()), results


def test_no_home_or_kernel_path_in_a_notebook_bundle(kernel):
    bundle = os.path.join(kernel.out, "topic.wb")
    for root, _, files in os.walk(bundle):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                data = f.read()
            assert kernel.out.encode() not in data and b"ipykernel_" not in data, name
