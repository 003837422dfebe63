"""Recurrent models, parametrized layers and hooked layers round-trip exactly in a fresh interpreter.

Each case of ``_wrapper_cases.py`` is trained, saved inside a pipeline and compared after loading
in one clean interpreter (flags, ``state_dict``, ``infer_apply`` and train-mode outputs; see
``_roundtrip.py``). The tests below it check what outputs alone would not show.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import workbench
from workbench import transform
from workbench.bundle import CaptureError

from ._roundtrip import compare, load_all, save_case
from ._wrapper_cases import CASES, Gated, double_output, square_output


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wrappers")
    for name, build in CASES.items():
        save_case(root, name, build)
    load_all(root, list(CASES))
    return root


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_wrapped_layer_round_trips_exactly(roundtrip, name):
    assert compare(roundtrip, name) == []


def test_hooks_change_the_output_they_are_saved_for():
    layer = torch.nn.Linear(2, 2)
    plain = layer(torch.ones(1, 2))
    layer.register_forward_hook(double_output)
    assert torch.equal(layer(torch.ones(1, 2)), plain * 2)  # the round trip above compares a hooked output


def test_hooks_are_registered_with_torch_calls_in_order():
    layer = torch.nn.Linear(2, 2)
    layer.register_forward_hook(double_output)
    layer.register_forward_hook(square_output, prepend=True)
    source = workbench.bundle.dependency_source(transform(layer))
    first = source.index(".register_forward_hook(square_output)")
    assert first < source.index(".register_forward_hook(double_output)")


def test_every_kind_of_hook_is_registered_again():
    from ._wrapper_cases import CASES

    layer, _ = CASES["hooks_in_order"]()
    source = workbench.bundle.dependency_source(transform(layer))
    for call in ("register_forward_pre_hook(shift_by_kwarg, with_kwargs=True)", "register_forward_pre_hook(add_one_to_input)",
                 "register_forward_hook(clamp, always_call=True)", "register_full_backward_hook(halve_gradient)",
                 "register_load_state_dict_post_hook(note_loaded)"):
        assert f"linear.{call}" in source, call


def test_bound_method_hook_keeps_its_layer():
    source = workbench.bundle.dependency_source(transform(Gated()))
    assert "inner.register_forward_hook(gated.gate)" in source
    assert "._register_state_dict_hook(rename_state)" in source


def test_hook_without_source_is_refused_by_name(tmp_path):
    namespace: dict = {}
    exec(compile("def ghost_hook(module, args, output):\n    return output\n", "<generated>", "exec"), namespace)
    layer = torch.nn.Linear(2, 2)
    layer.register_forward_hook(namespace["ghost_hook"])
    with pytest.raises(CaptureError, match=r"ghost_hook.*(?s:.*)hook forward_hook"):
        workbench.save(transform(layer), tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


LOAD_OLD_STATE = r"""
import sys, torch, workbench
layer = workbench.load(sys.argv[1])
old = torch.load(sys.argv[2], weights_only=True)
layer.load_state_dict(old)  # keys of the deprecated weight_norm: needs the compat pre-hook
print(torch.equal(layer.weight, old["weight_v"] * (old["weight_g"] / old["weight_v"].norm(dim=1, keepdim=True))))
"""


@pytest.mark.slow
def test_load_state_dict_pre_hook_works_after_loading(tmp_path):
    torch.manual_seed(0)
    layer = transform(torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(3, 2)))
    workbench.save(layer, tmp_path / "b")
    old = torch.nn.utils.weight_norm(torch.nn.Linear(3, 2)).state_dict()
    torch.save(dict(old), tmp_path / "old.pt")
    work = tmp_path / "empty"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-c", LOAD_OLD_STATE, str(tmp_path / "b"), str(tmp_path / "old.pt")],
                          cwd=work, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-1] == "True"


EVERY_MODE = r"""
import sys, torch, workbench
torch.set_num_threads(int(sys.argv[4]))
pl = workbench.load(sys.argv[1])
items = torch.load(sys.argv[2], weights_only=True)
torch.manual_seed(5)
out = {"infer": pl.infer_apply(items[0]), "eval": list(pl.eval_apply(items, batch_size=2)),
       "train": [t.detach() for t in pl.train_apply(items, batch_size=2, shuffle=False)]}
torch.save(out, sys.argv[3])
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["scripted", "traced"])
def test_torchscript_applies_in_every_mode_and_after_loading(tmp_path, kind):
    from workbench import batch, unbatch

    from ._wrapper_cases import Scorer

    torch.manual_seed(0)
    model = Scorer()
    module = torch.jit.script(model) if kind == "scripted" else torch.jit.trace(model.eval(), torch.randn(2, 4))
    pl = transform(lambda x: x * 2) >> batch >> transform(module) >> unbatch
    items = [torch.randn(4) for _ in range(6)]
    workbench.save(pl, tmp_path / "b")  # before train_apply updates the running statistics
    torch.manual_seed(5)
    live = {"infer": pl.infer_apply(items[0]), "eval": list(pl.eval_apply(items, batch_size=2)),
            "train": [t.detach() for t in pl.train_apply(items, batch_size=2, shuffle=False)]}
    if kind == "scripted":  # dropout is on in train mode only: the mode reached the TorchScript module
        assert not torch.equal(torch.stack(live["train"]), torch.stack(live["eval"]))
    torch.save(items, tmp_path / "items.pt")
    work = tmp_path / "empty"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-c", EVERY_MODE, str(tmp_path / "b"), str(tmp_path / "items.pt"),
                           str(tmp_path / "out.pt"), str(torch.get_num_threads())], cwd=work, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from workbench.bundle.compare import difference

    assert difference(live, torch.load(tmp_path / "out.pt", weights_only=True)) is None
    assert not any(p.name.endswith(".pkl") for p in (tmp_path / "b").rglob("*"))


def test_torch_compile_is_saved_as_the_call_that_compiles_again():
    model = torch.nn.Linear(2, 2)
    source = workbench.bundle.dependency_source(transform(torch.compile(model, backend="aot_eager", fullgraph=True)))
    assert "torch.compile(linear, backend='aot_eager', fullgraph=True)" in source
    tuned = torch.compile(torch.nn.Linear(2, 2), mode="max-autotune-no-cudagraphs")  # a mode is its options
    source = workbench.bundle.dependency_source(transform(tuned))
    assert "backend='inductor', options={'max_autotune': True, 'coordinate_descent_tuning': True}" in source


def test_quantized_weights_are_stored_as_integers_with_their_scale():
    from torch.ao.quantization import quantize_dynamic

    model = quantize_dynamic(torch.nn.Sequential(torch.nn.Linear(2, 2)), {torch.nn.Linear}, dtype=torch.qint8)
    cap = workbench.bundle.writer.capture(transform(model))
    weight = next(t for k, t in cap.data.weights.items() if k.endswith(".weight"))
    assert weight.dtype == torch.int8
    assert "_bundle.quantized(" in cap.source() and ".set_weight_bias(" in cap.source()


def test_quantized_recurrent_layers_store_their_cells_as_tensors_and_pack_them_again():
    from torch.ao.quantization import quantize_dynamic

    model = quantize_dynamic(torch.nn.Sequential(torch.nn.LSTM(3, 2, bidirectional=True), torch.nn.GRUCell(3, 2)),
                             {torch.nn.LSTM, torch.nn.GRUCell}, dtype=torch.qint8)
    model[0]._all_weight_values[1].eval()  # the cells are made anew at load: their flags are set again
    cap = workbench.bundle.writer.capture(transform(model))
    assert {k.rpartition(".")[2] for k, t in cap.data.weights.items() if t.dtype == torch.int8} == {
        "weight_ih_l0", "weight_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse", "weight_ih", "weight_hh"}
    source = cap.source()
    assert source.count(".set_weight_bias(") == 2 and "PackedParameter" not in source
    assert "_all_weight_values[0].training = True\n" in source and "_all_weight_values[1].training = False" in source


def test_quantized_recurrent_layer_packed_otherwise_than_it_would_be_again_is_refused(tmp_path):
    from torch.ao.quantization import quantize_dynamic

    model = quantize_dynamic(torch.nn.Sequential(torch.nn.LSTM(3, 2)), {torch.nn.LSTM}, dtype=torch.qint8)
    model[0].version = 1  # as after loading an old state dict: packing again would not reduce the range
    with pytest.raises(CaptureError, match=r"made with reduce_range=True but its version 1 packs them again "
                                           r"with reduce_range=False"):
        workbench.save(transform(model), tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_uninitialized_lazy_layer_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(CaptureError, match=r"uninitialized parameter of a lazy layer \(run the layer once"):
        workbench.save(transform(torch.nn.LazyLinear(3)), tmp_path / "b")
    assert list(tmp_path.iterdir()) == []
