"""JSON in and out of ``workbench predict``: decoding inputs, converting them, encoding outputs."""

from __future__ import annotations

import collections
import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from workbench import batch, transform, unbatch
from workbench.predict import (
    EncodeError,
    InputError,
    convert_inputs,
    parse_inputs,
    predict,
    read_json_lines,
    to_json,
    to_jsonable,
)


def test_parse_inputs_decodes_each_argument_and_names_the_bad_one():
    assert parse_inputs(['[1, 2.5]', '{"a": null}', '"text"', "true"]) == [[1, 2.5], {"a": None}, "text", True]
    with pytest.raises(InputError, match=r"input 2 is not valid JSON .*'\[1, 2'"):
        parse_inputs(["1", "[1, 2"], where="input")
    with pytest.raises(InputError, match="input 1 is not valid JSON"):
        parse_inputs(["hello"], where="input")


def test_parse_inputs_accepts_non_finite_literals():
    value = parse_inputs(["[NaN, Infinity, -Infinity]"])[0]
    assert math.isnan(value[0]) and value[1] == math.inf and value[2] == -math.inf


def test_read_json_lines_skips_blank_lines_and_names_file_and_line(tmp_path):
    good = tmp_path / "in.jsonl"
    good.write_text('[1, 2]\n\n{"x": 3}\n   \n"s"\n')
    assert read_json_lines(good) == [[1, 2], {"x": 3}, "s"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('[1]\n[2]\n[3,\n')
    with pytest.raises(InputError, match=r"bad.jsonl line 3 is not valid JSON"):
        read_json_lines(bad)
    with pytest.raises(InputError, match=r"input file '.*nope.jsonl' does not exist"):
        read_json_lines(tmp_path / "nope.jsonl")


def test_read_json_lines_from_a_stream_for_dash():
    import io

    assert read_json_lines("-", stdin=io.StringIO("1\n[2]\n")) == [1, [2]]
    with pytest.raises(InputError, match="<stdin> line 2"):
        read_json_lines("-", stdin=io.StringIO("1\n{\n"))


def test_convert_inputs_to_tensors_and_arrays_with_dtype():
    tensors = convert_inputs([[1, 2], [3, 4]], "tensor", "float64")
    assert all(t.dtype == torch.float64 for t in tensors) and tensors[1].tolist() == [3.0, 4.0]
    arrays = convert_inputs([[[1, 2]]], "numpy", "float32")
    assert arrays[0].dtype == np.float32 and arrays[0].shape == (1, 2)
    assert convert_inputs([[1, "a"]], "json") == [[1, "a"]]
    with pytest.raises(InputError, match="input 2 cannot be made into a tensor"):
        convert_inputs([[1], [[1], 2]], "tensor")
    with pytest.raises(InputError, match="'floaty' is not a torch dtype"):
        convert_inputs([[1]], "tensor", "floaty")
    with pytest.raises(InputError, match="--dtype needs --as tensor or --as numpy"):
        convert_inputs([[1]], "json", "float32")


def test_tensors_and_arrays_become_nested_lists_and_scalars_numbers():
    assert to_jsonable(torch.tensor([[1.5, 2.0], [3.0, 4.0]])) == [[1.5, 2.0], [3.0, 4.0]]
    assert to_jsonable(torch.tensor(7)) == 7
    assert to_jsonable(torch.tensor([True, False])) == [True, False]
    assert to_jsonable(np.arange(4, dtype=np.int16).reshape(2, 2)) == [[0, 1], [2, 3]]
    assert to_jsonable(np.float32(0.25)) == 0.25 and isinstance(to_jsonable(np.int64(3)), int)
    assert to_jsonable(torch.tensor([1.0, 2.0], requires_grad=True) * 2) == [2.0, 4.0]
    assert to_jsonable(torch.tensor([1.0], dtype=torch.bfloat16)) == [1.0]


def test_containers_tuples_named_tuples_dataclasses_and_dict_keys():
    Pair = collections.namedtuple("Pair", "label score")

    @dataclasses.dataclass
    class Result:
        label: str
        scores: torch.Tensor

    assert to_jsonable((1, (2, 3))) == [1, [2, 3]]
    assert to_jsonable(Pair("cat", torch.tensor(0.5))) == {"label": "cat", "score": 0.5}
    assert to_jsonable(Result("dog", torch.tensor([1.0, 0.0]))) == {"label": "dog", "scores": [1.0, 0.0]}
    assert json.loads(to_json({1: "a", "b": [np.int32(2)], False: None, 2.5: 1})) == {
        "1": "a", "b": [2], "false": None, "2.5": 1}
    with pytest.raises(EncodeError, match="two keys that both become the JSON key '1'"):
        to_json({1: "a", "1": "b"})


def test_non_finite_floats_are_written_as_chosen_and_never_as_invalid_json():
    value = {"t": torch.tensor([1.0, float("nan"), float("inf"), -float("inf")]), "f": float("nan")}
    line = to_json(value)
    assert json.loads(line) == {"t": [1.0, "NaN", "Infinity", "-Infinity"], "f": "NaN"}
    assert "NaN," not in line.replace('"NaN"', "")
    assert json.loads(to_json(value, "null")) == {"t": [1.0, None, None, None], "f": None}
    with pytest.raises(EncodeError, match=r"output\['t'\]\[1\] is nan"):
        to_json(value, "error")


def test_what_has_no_json_form_is_refused_naming_type_and_place():
    with pytest.raises(EncodeError, match=r"output\[1\] is a bytes"):
        to_json([1, b"raw"])
    with pytest.raises(EncodeError, match="complex tensor"):
        to_json(torch.tensor([1j]))
    with pytest.raises(EncodeError, match=r"output\['k'\] is an builtins|output\['k'\] is an object"):
        to_json({"k": object()})
    with pytest.raises(EncodeError, match="key of type tuple"):
        to_json({(1, 2): 3})


@transform
def _to_tensor(x):
    return torch.tensor(x, dtype=torch.float32)


@transform
def _double(x):
    return x * 2


def test_predict_outputs_line_up_with_inputs_with_and_without_batch_size():
    xs = [[float(i), float(i + 1)] for i in range(7)]
    with_unbatch = _to_tensor >> batch >> _double >> unbatch
    without_unbatch = _to_tensor >> batch >> _double
    per_item = [to_jsonable(y) for y in predict(with_unbatch, xs)]
    assert per_item == [[2.0 * a, 2.0 * b] for a, b in xs]
    assert [to_jsonable(y) for y in predict(with_unbatch, xs, batch_size=3)] == per_item
    assert [to_jsonable(y) for y in predict(without_unbatch, xs, batch_size=3)] == per_item
    assert [to_jsonable(y) for y in predict(without_unbatch, xs)] == [[p] for p in per_item]
