"""Notebook-only situations in one real kernel driven cell by cell: cells run out of order, re-run
after an edit, a cell that failed and was fixed, identical cells, magics and shell escapes, and a
pipeline built from cells that ran before tracking was switched on. The kernel is asked which cell
each live object came from, and every bundle is loaded in a fresh process and compared exactly."""

from __future__ import annotations

import pytest

from ._harness import Kernel, load_and_compare

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

SAVE = """\
def save_case(name, pl, inputs):
    outputs = [pl.infer_apply(x) for x in inputs]
    with open(os.path.join(OUT, name + '.pkl'), 'wb') as f:
        pickle.dump({'inputs': inputs, 'outputs': outputs}, f)
    workbench.save(pl, os.path.join(OUT, name + '.wb'))
    return {'name': name, 'bundle': os.path.join(OUT, name + '.wb'), 'expected': os.path.join(OUT, name + '.pkl')}

def origin(obj):
    from workbench import tracking
    cell = tracking.cell_for_class(obj) if isinstance(obj, type) else tracking.cell_for_code(obj.__code__)
    return None if cell is None else [cell.execution_count, cell.cell_id, cell.raw, cell.recovered]
"""


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    out = tmp_path_factory.mktemp("notebook")
    k = Kernel(env={"JPY_SESSION_NAME": "/work/demo/analysis.ipynb"})
    # Before workbench is imported: tracking is off.
    k.ok("def pre_fn(x):\n    return x * 7", cell_id="pre-1")
    k.ok("from dataclasses import dataclass\n@dataclass\nclass PreCfg:\n    k: int = 2", cell_id="pre-2")
    k.ok("class PreWithMethod:\n    def __call__(self, x):\n        return x - 1", cell_id="pre-3")
    k.ok(f"import os, pickle, torch\nimport workbench\nfrom workbench import transform\nOUT = {str(out)!r}", "setup")
    k.ok(SAVE, cell_id="helpers")
    k.cases = []
    yield k
    k.shutdown()


def test_tracking_is_on_after_import(kernel):
    assert kernel.json("workbench.tracking.is_active()") is True
    assert kernel.json("'workbench' in get_ipython().extension_manager.loaded") is True
    # %load_ext after the import is harmless
    kernel.ok("%load_ext workbench")
    assert kernel.json("workbench.tracking.is_active()") is True


def test_records_cell_ids_counts_and_notebook(kernel):
    result = kernel.ok("def rec_fn(x):\n    return x", cell_id="rec-cell")
    cell = kernel.json(
        "[(c.execution_count, c.cell_id, c.notebook, c.raw) for c in [workbench.tracking.cell_for_code(rec_fn.__code__)]][0]"
    )
    assert cell == [result.execution_count, "rec-cell", "/work/demo/analysis.ipynb", "def rec_fn(x):\n    return x"]


def test_cell_rerun_after_edit(kernel):
    first = kernel.ok("def edited(x):\n    return x + 1", cell_id="edit-me")
    kernel.ok("edited_v1 = edited")
    second = kernel.ok("def edited(x):\n    return x + 2", cell_id="edit-me")
    assert kernel.json("origin(edited_v1)")[:2] == [first.execution_count, "edit-me"]
    assert kernel.json("origin(edited)") == [second.execution_count, "edit-me", "def edited(x):\n    return x + 2", False]
    kernel.cases.append(kernel.json("save_case('rerun_edit', transform(edited_v1) >> transform(edited), [1, 5])"))


def test_cells_out_of_order(kernel):
    cells = {
        "ooo-1": "def ooo(x):\n    return x * OOO_K + ooo_helper(x)",
        "ooo-2": "OOO_K = 2",
        "ooo-3": "def ooo_helper(x):\n    return 100",
        "ooo-4": "pl_ooo = transform(ooo)",
        "ooo-5": "OOO_K = 9",
    }
    order = ["ooo-3", "ooo-5", "ooo-1", "ooo-4", "ooo-2", "ooo-3"]
    counts = {}
    for cell_id in order:
        counts.setdefault(cell_id, []).append(kernel.ok(cells[cell_id], cell_id=cell_id).execution_count)
    kernel.ok("def ooo_helper(x):\n    return -5", cell_id="ooo-3")  # edited and re-run last
    assert kernel.json("origin(ooo)")[:2] == [counts["ooo-1"][0], "ooo-1"]
    assert kernel.json("pl_ooo.infer_apply(3)") == 3 * 2 - 5
    kernel.cases.append(kernel.json("save_case('out_of_order', pl_ooo, [3, 4])"))


def test_failed_cell_then_fixed(kernel):
    failed = kernel.run("def fpart(x):\n    return x * 2\ndef fixme(x):\n    return x + undefined_name\n1 / 0", "fail")
    assert failed.ename == "ZeroDivisionError"
    fixed = kernel.ok("def fixme(x):\n    return x + 0.5", cell_id="fail")
    assert kernel.json("origin(fpart)")[:2] == [failed.execution_count, "fail"]
    assert kernel.json("origin(fixme)")[:2] == [fixed.execution_count, "fail"]
    kernel.cases.append(kernel.json("save_case('failed_then_fixed', transform(fpart) >> transform(fixme), [1, 2])"))


def test_identical_cells_keep_their_own_records(kernel):
    text = "def twin(x):\n    return x + TWIN_K"
    kernel.ok("TWIN_K = 11")
    a = kernel.ok(text, cell_id="twin-a")
    kernel.ok("first_twin = twin")
    b = kernel.ok(text, cell_id="twin-b")
    assert kernel.json("first_twin is not twin") is True
    assert kernel.json("origin(first_twin)")[:2] == [a.execution_count, "twin-a"]
    assert kernel.json("origin(twin)")[:2] == [b.execution_count, "twin-b"]
    records = kernel.json(f"[c.execution_count for c in workbench.tracking.cells() if c.raw == {text!r}]")
    assert records == [a.execution_count, b.execution_count]
    deps = kernel.json("workbench.bundle.dependency_source(transform(first_twin) >> transform(twin))")
    assert f"cell [{a.execution_count}] (id twin-a)" in deps and f"cell [{b.execution_count}] (id twin-b)" in deps, deps
    kernel.cases.append(kernel.json("save_case('identical_cells', transform(first_twin) >> transform(twin), [0])"))


def test_magics_and_shell_escapes_in_cells(kernel):
    kernel.ok("%time MAG_K = 4\n!echo shell-escape\nsh_out = !echo 42\nSH_VAL = int(sh_out[0])", cell_id="mag-1")
    kernel.ok("%%capture captured\ndef magic_fn(x):\n    return x * MAG_K + SH_VAL\nprint('hidden')", cell_id="mag-2")
    assert kernel.json("captured.stdout") == "hidden\n"
    assert kernel.json("origin(magic_fn)")[1] == "mag-2"
    kernel.ok("!echo another\ndef magic_fn2(x):\n    return -x\n%ls -d /", cell_id="mag-3")
    origin2 = kernel.json("origin(magic_fn2)")
    assert origin2[1] == "mag-3" and origin2[2].startswith("!echo another")
    r = kernel.ok("%%pipeline pl_mag\n%time MAG_J = 1\ntransform(magic_fn) >> transform(magic_fn2)"
                  " >> transform(lambda x: x + MAG_J)", cell_id="mag-4")
    assert "compose" in r.text().lower()
    assert kernel.json("workbench.registry.get('pl_mag') is pl_mag") is True
    deps = kernel.ok("%wb_deps pl_mag").stdout
    assert "def magic_fn(x)" in deps and "def magic_fn2(x)" in deps
    kernel.cases.append(kernel.json("save_case('magics_shell', pl_mag, [1, 2])"))


def test_definitions_in_timed_cells(kernel):
    # IPython compiles %%time bodies under the shared pseudo file "<timed exec>" and keeps no source;
    # tracking gives each such body a cell file of its own.
    r = kernel.ok("%%time\nTIMED_K = 2\ndef timed_fn(x):\n    return x * TIMED_K\nclass TimedBox:\n    k = 5",
                  cell_id="timed")
    assert "Wall time" in r.stdout
    assert kernel.json("origin(timed_fn)") == [r.execution_count, "timed", "%%time\nTIMED_K = 2\n"
                                                "def timed_fn(x):\n    return x * TIMED_K\nclass TimedBox:\n    k = 5",
                                                False]
    assert kernel.json("origin(TimedBox)")[:2] == [r.execution_count, "timed"]
    kernel.ok("%time timed_lam = transform(lambda x: x - TimedBox.k)")
    kernel.cases.append(kernel.json("save_case('timed_cells', transform(timed_fn) >> timed_lam, [4])"))


def test_pipeline_built_before_tracking(kernel):
    assert kernel.json("origin(pre_fn)") == [1, None, "def pre_fn(x):\n    return x * 7", True]
    assert kernel.json("origin(PreWithMethod)")[0] == 3
    assert kernel.json("origin(PreCfg)") is None  # no method, created before tracking: not guessed
    kernel.cases.append(kernel.json("save_case('before_tracking', transform(pre_fn) >> transform(PreWithMethod)(), [2])"))
    r = kernel.run("pre_cfg = PreCfg()\nworkbench.save(transform(lambda x: x * pre_cfg.k), os.path.join(OUT, 'precfg.wb'))")
    if r.ok:  # captured exactly (e.g. by value): then it must compute the same
        kernel.cases.append(kernel.json("save_case('before_tracking_dataclass', transform(lambda x: x * pre_cfg.k), [3])"))
    else:
        assert "PreCfg" in r.evalue, r.evalue
        assert kernel.json("os.path.exists(os.path.join(OUT, 'precfg.wb'))") is False


def test_dataclass_without_methods_redefined(kernel):
    kernel.ok("@dataclass\nclass Box:\n    size: int = 1", cell_id="box-1")
    kernel.ok("box = Box(size=5)")
    second = kernel.ok("@dataclass\nclass Box:\n    size: int = 1000", cell_id="box-2")
    first = kernel.json("origin(type(box))")
    assert first[1] == "box-1" and first[0] == second.execution_count - 2
    assert kernel.json("origin(Box)")[:2] == [second.execution_count, "box-2"]
    kernel.cases.append(kernel.json("save_case('dataclass_redefined', transform(lambda x: x + box.size + Box().size), [0])"))


def test_magic_errors(kernel):
    r = kernel.run("%%pipeline bad\ny = 1")
    assert r.ename == "UsageError" and "last statement is an Assign" in r.evalue
    r = kernel.run("%%pipeline bad\n41 + 1")
    assert r.ename == "UsageError" and "evaluates to an int (42)" in r.evalue
    assert kernel.json("'bad' in globals()") is False
    r = kernel.run("%wb_save no_such_pipeline /tmp/x")
    assert r.ename == "UsageError" and "no_such_pipeline" in r.evalue and "pl_mag" in r.evalue


def test_check_option_summarises_steps(kernel):
    r = kernel.ok("%%pipeline pl_chk --check \"torch.ones(3) * 1\"\n"
                  "transform(lambda x: x * 2) >> workbench.batch >> transform(torch.nn.Linear(3, 2))"
                  " >> workbench.unbatch >> transform(torch.argmax)")
    lines = r.stdout.splitlines()
    assert lines[0] == "[0] lambda x: x * 2 -> Tensor[3] float32"
    assert lines[2].startswith("[2] Linear") and lines[2].endswith("Tensor[1, 2] float32")
    assert lines[4] == "[4] argmax -> Tensor[] int64"


def test_pipeline_magic_save_and_wb_save(kernel):
    path = kernel.json("os.path.join(OUT, 'magic_saved.wb')")
    cell = f"%%pipeline pl_saved --save {path} --check 2\nSAVED_K = 3\ntransform(lambda x: x * SAVED_K)"
    r = kernel.ok(cell)
    assert "[0] lambda x: x * SAVED_K -> int 6" in r.stdout
    assert f"saved pl_saved to {path} (checked in a fresh interpreter)" in r.stdout
    again = kernel.run(cell)  # the bundle exists: re-running needs --overwrite (a one-line error, before the cell runs)
    assert again.ename == "UsageError" and path in again.evalue and "already exists" in again.evalue
    kernel.ok("SAVED_K = 4")
    kernel.ok(cell.replace("--save", "--overwrite --save"))
    kernel.cases.append({"name": "magic_saved", "bundle": path,
                         "expected": kernel.json("save_case('magic_saved_expected', pl_saved, [2, 5])['expected']")})
    r = kernel.run(f"%wb_save pl_saved {path}")
    assert r.ename == "UsageError" and "already exists" in r.evalue
    r = kernel.ok(f"%wb_save pl_saved {path} --overwrite")
    assert f"saved pl_saved to {path}" in r.stdout


def test_unload_and_reload_extension(kernel):
    kernel.ok("%unload_ext workbench")
    assert kernel.json("workbench.tracking.is_active()") is False
    kernel.ok("def while_off(x):\n    return x - 3", cell_id="off")
    kernel.ok("%load_ext workbench")
    assert kernel.json("workbench.tracking.is_active()") is True
    # the cell that ran while tracking was off is recovered exactly from the input history
    assert kernel.json("origin(while_off)")[2:] == ["def while_off(x):\n    return x - 3", True]
    assert kernel.json("origin(edited)")[1] is None  # records from before the unload were dropped


def test_zz_bundles_load_in_fresh_processes(kernel):
    # each case was saved by the test that made it (and that test failed if saving failed)
    assert kernel.cases
    results = load_and_compare(kernel.cases)
    bad = {name: r["detail"] for name, r in results.items() if not r["ok"]}
    assert not bad, bad
