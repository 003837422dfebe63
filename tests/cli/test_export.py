"""``workbench export``: notebooks run by the console script in a real kernel, in a subprocess."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from workbench.bundle import load, save

from ._cli import REPO, call_cli, run_cli


def _notebook(path: Path, *sources: str) -> Path:
    cells = [new_markdown_cell("# A notebook")]
    cells += [new_code_cell(source) for source in sources]
    nbformat.write(new_notebook(cells=cells), str(path))
    return path


@pytest.mark.kernel
@pytest.mark.slow
def test_a_failing_cell_stops_the_export_names_the_cell_and_writes_nothing(tmp_path):
    notebook = _notebook(
        tmp_path / "broken.ipynb",
        "from workbench import transform\nscale = transform(lambda x: x * 2)",
        "",
        "limit = 3\nvalues = [1, 2]\nvalues[limit]",
        "never = transform(lambda x: x)",
    )
    before = notebook.read_bytes()
    out = tmp_path / "broken.wb"
    executed = tmp_path / "broken.executed.ipynb"
    result = run_cli("export", notebook, "--pipeline", "scale", "--out", out, "--executed", executed)
    assert result.returncode == 1, result.stderr
    # progress names each code cell as it starts; the empty cell is skipped, the last never runs
    assert "[1/3] cell 2: from workbench import transform" in result.stderr
    assert "[2/3] cell 4: limit = 3" in result.stderr
    assert "cell 5" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "cell 4 ('limit = 3') failed: IndexError: list index out of range" in last
    assert last.startswith("workbench export: ")
    assert result.stdout == ""
    assert not out.exists() and not executed.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.ipynb"]
    assert notebook.read_bytes() == before  # the user's notebook is never modified


@pytest.mark.kernel
@pytest.mark.slow
def test_a_missing_name_lists_registered_pipelines_and_pipeline_variables(tmp_path):
    notebook = _notebook(
        tmp_path / "names.ipynb",
        "import torch\nfrom workbench import transform, batch, unbatch",
        "%%pipeline doubler\ntransform(lambda x: x * 2)",
        "adder = transform(lambda x: x + 1)\nsteps = 3\nmarker = batch",
    )
    out = tmp_path / "missing.wb"
    result = run_cli("export", notebook, "--pipeline", "steps", "--out", out)
    assert result.returncode == 1, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert "no pipeline named 'steps'" in message and "'steps' is an int" in message
    assert "registered pipelines: doubler" in message
    assert "pipeline variables: adder, doubler" in message  # markers such as `batch` are not listed
    assert not out.exists() and result.stdout == ""


def test_usage_errors_are_found_before_any_kernel_starts(tmp_path):
    missing = call_cli("export", tmp_path / "nope.ipynb", "--pipeline", "p", "--out", tmp_path / "p.wb")
    assert missing.returncode == 2 and "nope.ipynb' does not exist" in missing.stderr
    notebook = _notebook(tmp_path / "n.ipynb", "x = 1")
    (tmp_path / "taken.wb").mkdir()
    taken = call_cli("export", notebook, "--pipeline", "p", "--out", tmp_path / "taken.wb")
    assert taken.returncode == 2 and "already exists" in taken.stderr and "--overwrite" in taken.stderr
    assert "cell" not in taken.stderr  # no cell ran
    no_out = call_cli("export", notebook, "--pipeline", "p")
    assert no_out.returncode == 2 and "--out" in no_out.stderr
    unknown = call_cli("export", notebook, "-p", "p", "-o", tmp_path / "p.wb", "--kernel", "no-such-kernel")
    assert unknown.returncode == 2 and "no Jupyter kernel named 'no-such-kernel'" in unknown.stderr
    assert "python3" in unknown.stderr


PROBE = '''
import json as _json
with open("probe.jsonl", "w") as _f:
    for _row in X_test:
        _f.write(_json.dumps(_row.tolist()) + "\\n")
print("PROBE " + _json.dumps({"labels": y_test.tolist(), "predictions": [int(p) for p in predictions]}))
'''


def _stream_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


@pytest.mark.kernel
@pytest.mark.slow
def test_quickstart_exported_then_predicted_in_another_process_matches_the_notebook(tmp_path):
    """The quickstart notebook, exported by the CLI; predict must reproduce the notebook's own outputs.

    The notebook is copied with one extra cell at the end that writes the test images as JSON lines
    and prints the notebook's predictions for them; ``--executed`` gives us the outputs of the run
    the bundle was saved from.
    """
    nb = nbformat.read(str(REPO / "notebooks" / "quickstart.ipynb"), as_version=4)
    nb.cells.append(new_code_cell(PROBE))
    notebook = tmp_path / "quickstart.ipynb"
    nbformat.write(nb, str(notebook))
    out = tmp_path / "digits.wb"
    executed = tmp_path / "executed.ipynb"
    result = run_cli("export", notebook, "--pipeline", "classifier", "--out", out, "--executed", executed,
                     "--check-inputs", "X_test[:3]", "--timeout", "240")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    code_cells = sum(1 for c in nb.cells if c.cell_type == "code")
    assert f"[1/{code_cells}] cell 2: import numpy as np" in result.stderr
    assert "checked on 3 inputs" in result.stderr
    assert (out / "manifest.json").is_file() and (out / "source.py").is_file()

    ran = nbformat.read(str(executed), as_version=4)
    probe = json.loads(_stream_text(ran.cells[-1]).split("PROBE ", 1)[1])
    accuracy_line = next(line for cell in ran.cells for line in _stream_text(cell).splitlines()
                         if line.startswith("accuracy: "))

    # every test image, batched, in a fresh process: the notebook's predictions, the notebook's accuracy
    batched = run_cli("predict", out, "--file", tmp_path / "probe.jsonl", "--batch-size", "128")
    assert batched.returncode == 0, batched.stderr
    labels = [json.loads(line) for line in batched.stdout.splitlines()]
    assert labels == probe["predictions"]
    accuracy = sum(p == t for p, t in zip(labels, probe["labels"])) / len(labels)
    assert accuracy_line == f"accuracy: {accuracy:.3f}"

    # a few images as arguments, one at a time through infer_apply
    rows = (tmp_path / "probe.jsonl").read_text().splitlines()[:4]
    single = run_cli("predict", out, *rows)
    assert single.returncode == 0, single.stderr
    assert [json.loads(line) for line in single.stdout.splitlines()] == probe["predictions"][:4]


@pytest.mark.kernel
@pytest.mark.slow
def test_a_registered_pipeline_is_checked_on_its_pipeline_check_input_and_traced_to_its_cell(tmp_path):
    notebook = _notebook(
        tmp_path / "adder.ipynb",
        "import torch\nfrom workbench import transform",
        "OFFSET = 20",
        "%%pipeline adder --check 21\ntransform(lambda x: x + OFFSET + 1)",
        "OFFSET = 0  # after the pipeline was built: the live pipeline reads this value, so must the bundle",
    )
    out = tmp_path / "adder.wb"
    result = run_cli("export", notebook, "-p", "adder", "-o", out, "--check")
    assert result.returncode == 0, result.stderr
    assert "saved 'adder' (registry)" in result.stderr and "checked on 1 input" in result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    cells = nbformat.read(str(notebook), as_version=4).cells
    origins = [d.get("origin") or {} for d in manifest["definitions"]]
    cell_origins = [o for o in origins if o.get("kind") == "cell"]
    assert cell_origins, manifest["definitions"]
    # the kernel knew the notebook's path and each cell's id, as in JupyterLab
    assert all(o.get("notebook") == "adder.ipynb" for o in cell_origins)  # relative: no home path
    assert cells[3].id in {o.get("cell_id") for o in cell_origins}
    predicted = run_cli("predict", out, "21", "1.5")
    assert predicted.returncode == 0, predicted.stderr
    assert predicted.stdout.splitlines() == ["22", "2.5"]


@pytest.mark.kernel
@pytest.mark.slow
def test_a_check_that_finds_different_outputs_fails_and_leaves_the_old_bundle(tmp_path):
    notebook = _notebook(
        tmp_path / "noisy.ipynb",
        "import torch\nfrom workbench import transform",
        "noisy = transform(lambda x: x + torch.rand(1).item())  # differs in every process",
    )
    (tmp_path / "previous_pipeline.py").write_text("from workbench import transform\nprevious = transform(abs)\n")
    spec = importlib.util.spec_from_file_location("previous_pipeline", tmp_path / "previous_pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = save(module.previous, tmp_path / "noisy.wb")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = run_cli("export", notebook, "-p", "noisy", "-o", out, "--check-inputs", "[1.0, 2.0]",
                     "--overwrite")
    assert result.returncode == 1, result.stderr
    assert "workbench export: saving 'noisy' failed: CheckError" in result.stderr
    assert "input 0 (1.0): output: expected" in result.stderr
    assert result.stderr.rstrip().endswith("nothing was written")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noisy.ipynb", "noisy.wb", "previous_pipeline.py"]


@pytest.mark.kernel
@pytest.mark.slow
def test_timeout_stops_a_slow_cell(tmp_path):
    # The slow cell comes first: a 3 s budget must not depend on how long importing torch takes here.
    notebook = _notebook(tmp_path / "slow.ipynb", "import time", "time.sleep(60)",
                         "from workbench import transform\nslow = transform(abs)")
    out = tmp_path / "slow.wb"
    result = run_cli("export", notebook, "-p", "slow", "-o", out, "--timeout", "3")
    assert result.returncode == 1, result.stderr
    assert "cell 3 ('time.sleep(60)') did not finish within 3 seconds" in result.stderr
    assert not out.exists()


@pytest.mark.kernel
@pytest.mark.slow
def test_timeout_limits_the_notebooks_cells_not_loading_workbench_or_saving(tmp_path):
    """Loading workbench imports torch (about 2 s, more on a busy machine): that is not the notebook's cell."""
    notebook = _notebook(tmp_path / "quick.ipynb", "from workbench import transform\nquick = transform(abs)")
    out = tmp_path / "quick.wb"
    result = run_cli("export", notebook, "-p", "quick", "-o", out, "--timeout", "1", "--check-inputs", "[-2]")
    assert result.returncode == 0, result.stderr
    assert load(out).infer_apply(-2) == 2
    fraction = call_cli("export", notebook, "-p", "quick", "-o", tmp_path / "other.wb", "--timeout", "0.5")
    assert fraction.returncode == 2 and "'0.5' is not a whole number" in fraction.stderr
