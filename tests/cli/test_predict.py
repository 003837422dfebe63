"""``workbench predict``: a bundle saved here, run by the console script in a separate process."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from workbench.bundle import save
from workbench.predict import to_jsonable

from ._cli import call_cli, run_cli

PIPELINES = '''
import torch
from workbench import transform, batch, unbatch

SCALE = 2.0

@transform
def to_tensor(x):
    return torch.tensor(x, dtype=torch.float32)

@transform
def scale(t):
    return t * SCALE

@transform
def report(t):
    if t.shape != (2,):
        raise ValueError(f"expected 2 numbers, got shape {tuple(t.shape)}")
    print("computing", flush=True)
    return {"doubled": t, "log": torch.log(t), "max": (t.max(), int(t.argmax()))}

@transform
def sum_tensor(t):
    return t.sum()

detailed = to_tensor >> batch >> scale >> unbatch >> report
summed = transform(torch.as_tensor) >> batch >> scale >> transform(lambda b: b.sum(-1))
'''


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """Bundles of two pipelines defined in a module file, plus the live pipelines."""
    root = tmp_path_factory.mktemp("predict")
    module_path = root / "cli_pipelines.py"
    module_path.write_text(PIPELINES)
    spec = importlib.util.spec_from_file_location("cli_pipelines", module_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["cli_pipelines"] = module
    spec.loader.exec_module(module)
    paths = {name: save(getattr(module, name), root / f"{name}.wb") for name in ("detailed", "summed")}
    yield root, paths, module
    sys.modules.pop("cli_pipelines", None)


def _lines(stdout: str) -> list:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.slow
def test_inputs_as_arguments_give_one_json_line_each_matching_the_live_pipeline(bundles):
    root, paths, module = bundles
    inputs = [[1.0, 2.0], [0.0, 3.5], [-1.0, 4.0]]
    result = run_cli("predict", paths["detailed"], *map(json.dumps, inputs))
    assert result.returncode == 0, result.stderr
    got = _lines(result.stdout)
    assert got == [json.loads(json.dumps(to_jsonable(module.detailed.infer_apply(x)))) for x in inputs]
    # written out by hand: a dict as an object, a tuple as a list, -inf and NaN as strings
    assert got[1]["doubled"] == [0.0, 7.0] and got[1]["log"][0] == "-Infinity" and got[1]["max"] == [7.0, 1]
    assert got[2]["log"][0] == "NaN" and math.isclose(got[2]["log"][1], math.log(8.0), rel_tol=1e-6)
    # what the pipeline prints does not pollute the JSON lines
    assert "computing" in result.stderr and "computing" not in result.stdout


@pytest.mark.slow
def test_non_finite_null_and_error(bundles):
    _, paths, _ = bundles
    nulls = run_cli("predict", paths["detailed"], "--non-finite", "null", "[0, 1]")
    assert nulls.returncode == 0, nulls.stderr
    assert _lines(nulls.stdout)[0]["log"] == [None, torch.log(torch.tensor(2.0)).item()]
    refused = run_cli("predict", paths["detailed"], "--non-finite", "error", "[1, 1]", "[0, 1]")
    assert refused.returncode == 1
    assert "output for input 2" in refused.stderr and "output['log'][0] is -inf" in refused.stderr
    assert [line["doubled"] for line in _lines(refused.stdout)] == [[2.0, 2.0]]  # input 1 is kept


@pytest.mark.slow
def test_json_lines_file_and_stdin_and_batch_size_agree(bundles, tmp_path):
    _, paths, module = bundles
    inputs = [[float(i), float(i) / 2] for i in range(11)]
    expected = [float(module.summed.infer_apply(x)) for x in inputs]
    file = tmp_path / "in.jsonl"
    file.write_text("\n".join(json.dumps(x) for x in inputs[:5]) + "\n\n" + "\n".join(json.dumps(x) for x in inputs[5:]))
    from_file = run_cli("predict", paths["summed"], "--file", file)
    assert from_file.returncode == 0, from_file.stderr
    assert _lines(from_file.stdout) == [[y] for y in expected]  # infer_apply keeps the batch of one
    # batch but no unbatch: eval_apply's batches are split back into one line per input
    batched = run_cli("predict", paths["summed"], "--file", "-", "--batch-size", "4", input=file.read_text())
    assert batched.returncode == 0, batched.stderr
    assert _lines(batched.stdout) == expected


@pytest.mark.slow
def test_as_tensor_with_dtype(bundles):
    _, paths, _ = bundles
    result = run_cli("predict", paths["summed"], "--as", "tensor", "--dtype", "float64", "[0.1, 0.2]")
    assert result.returncode == 0, result.stderr
    assert _lines(result.stdout) == [[(torch.tensor([0.1, 0.2], dtype=torch.float64) * 2).sum().item()]]


@pytest.mark.slow
def test_invalid_json_is_a_usage_error_naming_the_input_and_the_others_still_run(bundles, tmp_path):
    _, paths, _ = bundles
    result = run_cli("predict", paths["detailed"], "[1, 2]", "[1, 2", "[2, 2]")
    assert result.returncode == 2
    assert "input 2 is not valid JSON" in result.stderr
    assert [line["doubled"] for line in _lines(result.stdout)] == [[2.0, 4.0], [4.0, 4.0]]
    assert "2 of 3 inputs gave an output" in result.stderr
    file = tmp_path / "bad.jsonl"
    file.write_text("[1, 2]\n[3, 4]\nnot json\n")
    result = run_cli("predict", paths["detailed"], "--file", file)
    assert result.returncode == 2
    assert "bad.jsonl line 3 is not valid JSON" in result.stderr and len(_lines(result.stdout)) == 2


def test_missing_input_files_and_argument_mistakes_are_usage_errors(bundles, tmp_path):
    _, paths, _ = bundles
    missing_input = call_cli("predict", paths["detailed"], "--file", tmp_path / "nope.jsonl")
    assert missing_input.returncode == 2 and "nope.jsonl' does not exist" in missing_input.stderr
    no_inputs = call_cli("predict", paths["detailed"])
    assert no_inputs.returncode == 2 and "no inputs" in no_inputs.stderr
    bad_size = call_cli("predict", paths["detailed"], "[1, 2]", "--batch-size", "0")
    assert bad_size.returncode == 2 and "--batch-size" in bad_size.stderr


@pytest.mark.slow
def test_a_failing_input_is_named_and_the_good_outputs_are_kept(bundles):
    _, paths, _ = bundles
    result = run_cli("predict", paths["detailed"], "[1, 2]", "[1, 2, 3]", "[3, 1]", "not json")
    assert result.returncode == 1  # the pipeline failed on one: 1 wins over the usage error of input 4
    assert "failed on input 2" in result.stderr and "ValueError: expected 2 numbers, got shape (3,)" in result.stderr
    assert "input 4 is not valid JSON" in result.stderr
    assert [line["doubled"] for line in _lines(result.stdout)] == [[2.0, 4.0], [6.0, 2.0]]
    batched = run_cli("predict", paths["detailed"], "--batch-size", "2", "[1, 2]", "[1, 2, 3]", "[3, 1]")
    assert batched.returncode == 1
    assert "failed on the batch of input 1 to input 2" in batched.stderr
    assert [line["doubled"] for line in _lines(batched.stdout)] == [[6.0, 2.0]]


@pytest.mark.slow
def test_lines_reads_raw_text_one_input_per_line(tmp_path):
    from workbench import transform

    topic = transform(str.split) >> transform(lambda words: {"words": len(words), "sport": "striker" in words})
    bundle = save(topic, tmp_path / "topic.wb")
    args = run_cli("predict", bundle, "--lines", "the striker scored", "rates rose again")
    assert args.returncode == 0, args.stderr
    assert _lines(args.stdout) == [{"words": 3, "sport": True}, {"words": 3, "sport": False}]
    without = run_cli("predict", bundle, "the striker scored")
    assert without.returncode == 2 and "input 1 is not valid JSON" in without.stderr
    file = tmp_path / "news.txt"
    file.write_text('the striker scored\n\n"quoted" is text too\r\nonly\n')
    lines = run_cli("predict", bundle, "--lines", "--file", file)
    assert lines.returncode == 0, lines.stderr
    assert [x["words"] for x in _lines(lines.stdout)] == [3, 4, 1]
    piped = run_cli("predict", bundle, "--lines", "--file", "-", input="a b\n")
    assert _lines(piped.stdout) == [{"words": 2, "sport": False}]
    mixed = call_cli("predict", bundle, "--lines", "--as", "tensor", "x")
    assert mixed.returncode == 2 and "--lines" in mixed.stderr


@pytest.mark.slow
def test_a_bundle_that_fails_verification_exits_3_naming_the_file(bundles, tmp_path):
    _, paths, _ = bundles
    edited = tmp_path / "edited.wb"
    shutil.copytree(paths["detailed"], edited)
    source = edited / "source.py"
    source.write_text(source.read_text().replace("SCALE = 2.0", "SCALE = 3.0"))
    result = run_cli("predict", edited, "[1, 2]")
    assert result.returncode == 3
    assert "source.py" in result.stderr and "modified" in result.stderr and result.stdout == ""
    not_a_bundle = tmp_path / "plain"
    not_a_bundle.mkdir()
    result = call_cli("predict", not_a_bundle, "[1, 2]")
    assert result.returncode == 3 and "manifest.json" in result.stderr
    result = call_cli("predict", tmp_path / "nowhere.wb", "[1, 2]")
    assert result.returncode == 3 and "no bundle at" in result.stderr and "nowhere.wb" in result.stderr
