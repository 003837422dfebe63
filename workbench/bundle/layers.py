"""Rebuilding torch layers without pickle: class, state, tensors, hooks and parametrizations.

:class:`LayersMixin` is the part of :class:`~workbench.bundle.capture.Capture` that turns a
``torch.nn.Module`` into a ``_bundle.module(...)`` call. It follows torch's own pickling contract
(what ``torch.save(model)`` relies on), but writes the state out as code and tensors:

- the state is what the class's ``__getstate__`` returns (so recurrent layers drop the weak
  references to their flat weights), and loading hands it to ``__setstate__`` (which rebuilds them);
- parameters and buffers go to ``weights.safetensors``; sub-layers are rebuilt the same way;
- parametrized layers (``torch.nn.utils.parametrize``, ``parametrizations.weight_norm`` ...) are
  rebuilt as their plain class holding the saved ``parametrizations`` and then re-parametrized;
- hooks (forward, pre-forward, backward, state-dict) are saved like any other function and
  registered again, in their order, by the same torch calls a user would write;
- packed weights of quantized layers (``Linear``, ``LSTM``, ``GRU`` and the cells) are unpacked to
  tensors and packed again with ``set_weight_bias``;
- ``torch.compile`` becomes the original layer and the ``torch.compile`` call with the same settings;
- TorchScript modules are saved as TorchScript's own archive, their tensors as weights.

>>> import torch
>>> from workbench.bundle.capture import Capture
>>> cap = Capture(); cap.capture(torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(2, 2)))
>>> "parametrized=['weight']" in cap.source()
True
"""

from __future__ import annotations

import sys
from typing import Any

from .attributes import class_lookup

__all__ = ["LayersMixin"]

_PARAMETRIZE = "torch.nn.utils.parametrize"


def _is_parametrized_class(cls: type) -> bool:
    """Whether ``cls`` is the class ``torch.nn.utils.parametrize`` made for one parametrized layer."""
    return cls.__module__ == _PARAMETRIZE and cls.__name__.startswith("Parametrized") and len(cls.__bases__) == 1


_HOOK_DICTS = ("_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks", "_state_dict_pre_hooks",
               "_state_dict_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")


def _has_hooks(module: Any) -> bool:
    state = vars(module)
    return any(state.get(d) for d in _HOOK_DICTS)


class LayersMixin:
    """torch layers (mixed into ``Capture``)."""

    def _layer_class(self, module: Any) -> tuple[type, bool, list[str]]:
        """``(class to rebuild, made a transform?, parametrized tensor names)`` for ``module``.

        The classes ``transform`` and ``parametrize`` make on the fly are not saved: the layer is
        rebuilt from its plain class and made a transform / parametrized again when it loads.
        """
        from .objects import _is_wrapped

        cls = type(module)
        wrapped = False
        parametrized: list[str] = []
        for _ in range(2):
            if "_wb_base" in vars(cls) and _is_wrapped(cls):
                cls, wrapped = cls._wb_base, True
            if _is_parametrized_class(cls):
                parametrized = list(module.parametrizations.keys())
                cls = cls.__bases__[0]
        return cls, wrapped, parametrized

    def _define_layer(self, module: Any, name: str) -> None:
        torch = self._torch
        self._path.append(f"layer {type(module).__name__}")
        try:
            if isinstance(module, torch.jit.ScriptModule):
                return self._define_script_module(module, name)
            dynamo = sys.modules.get("torch._dynamo.eval_frame")
            if dynamo is not None and isinstance(module, dynamo.OptimizedModule):
                return self._define_compiled(module, name)
            cls, wrapped, parametrized = self._layer_class(module)
            state = class_lookup(cls, "__getstate__")(module)
            if not isinstance(state, dict):
                self._fail(module, f"its __getstate__ returns a {type(state).__name__}, not the dict of its "
                                   "attributes a torch layer is rebuilt from")
            cls_text = f"_wb.transform({self.expr(cls, cls.__name__)})" if wrapped else self.expr(cls, cls.__name__)
            params = [f"{p!r}: {self._weight_expr(t, f'{name}.{p}', True)}" for p, t in state["_parameters"].items()]
            buffers = [f"{b!r}: {self._weight_expr(t, f'{name}.{b}', False)}" for b, t in state["_buffers"].items()]
            repacked, packed = self._repacking(module, name)
            children = []
            for cname, child in state["_modules"].items():
                if cname in repacked:
                    continue
                self._path.append(f"submodule {cname!r}")
                try:
                    children.append(f"{cname!r}: {self.expr(child, f'{name}_{cname}') if child is not None else 'None'}")
                finally:
                    self._path.pop()
            attrs = []
            for attr, value in state.items():
                if attr in self._torch_internal and attr != "training" or attr == "_compiled_call_impl" \
                        or attr in repacked:
                    continue
                if isinstance(value, torch.ScriptObject):
                    self._fail(module, f"its attribute {attr!r} is a TorchScript object "
                                       f"({value._type().qualified_name()}) that it offers no way to rebuild")
                self._path.append(f"attribute {attr!r}")
                try:
                    attrs.append(f"{attr!r}: {self.expr(value, attr)}")
                finally:
                    self._path.pop()
            args = [cls_text, "{" + ", ".join(attrs) + "}"]
            if params:
                args.append("parameters={" + ", ".join(params) + "}")
            if buffers:
                args.append("buffers={" + ", ".join(buffers) + "}")
            if children:
                args.append("modules={" + ", ".join(children) + "}")
            non_persistent = sorted(state["_non_persistent_buffers_set"])
            if non_persistent:
                args.append(f"non_persistent={non_persistent!r}")
            if parametrized:
                args.append(f"parametrized={parametrized!r}")
            n_tensors = len(params) + len(buffers)
            comment = f"# torch layer {type(module).__qualname__}: attributes by value"
            comment += f", {n_tensors} tensors from weights.safetensors\n" if n_tensors else "\n"
            self.records.add(comment + f"{name} = _bundle.module({', '.join(args)})")
            for call in packed:
                self.records.add(call)
            compiled = vars(module).get("_compiled_call_impl")
            if compiled is not None:  # layer.compile(...): compiled again in place when the bundle loads
                ctx = _dynamo_context(compiled)
                if ctx is None:
                    self._fail(module, "it was compiled in place with settings that cannot be read back")
                self.records.add(f"{name}.compile({self._compile_arguments(ctx, module)})")
            unknown = [d for d, hooks in vars(module).items()
                       if d.endswith("_hooks") and d not in _HOOK_DICTS and isinstance(hooks, dict) and hooks]
            if unknown:  # a kind of hook this torch has that bundles do not know how to register again
                self._fail(module, f"it has {unknown[0].strip('_').replace('_', ' ')} registered, which bundles "
                                   "cannot register again (remove them, or fold them into a step)")
            if _has_hooks(module):
                self._hooked_layers.append((module, name, list(self._path)))
        finally:
            self._path.pop()

    # --- hooks -----------------------------------------------------------------------------------------

    def _register_hooks(self) -> None:
        """Register the hooks of every layer again, once all layers exist (a hook may use any of them)."""
        hooked, self._hooked_layers = self._hooked_layers, []
        for module, name, path in hooked:
            saved, self._path = self._path, path
            try:
                self._register_layer_hooks(module, name)
            finally:
                self._path = saved

    def _register_layer_hooks(self, module: Any, name: str) -> None:
        """Statements registering ``module``'s hooks again, in order, with the calls torch offers for them."""
        from torch.nn.modules.module import _WrappedHook

        state = vars(module)
        calls: list[tuple[str, Any, str]] = []  # (method, hook, extra arguments)
        for hid, hook in state["_forward_pre_hooks"].items():
            kwargs = ", with_kwargs=True" if state["_forward_pre_hooks_with_kwargs"].get(hid) else ""
            calls.append(("register_forward_pre_hook", hook, kwargs))
        for hid, hook in state["_forward_hooks"].items():
            kwargs = ", with_kwargs=True" if state["_forward_hooks_with_kwargs"].get(hid) else ""
            kwargs += ", always_call=True" if state["_forward_hooks_always_called"].get(hid) else ""
            calls.append(("register_forward_hook", hook, kwargs))
        for hook in state["_backward_pre_hooks"].values():
            calls.append(("register_full_backward_pre_hook", hook, ""))
        for hook in state["_backward_hooks"].values():
            full = state["_is_full_backward_hook"]
            calls.append(("register_full_backward_hook" if full else "register_backward_hook", hook, ""))
        for hook in state["_state_dict_pre_hooks"].values():
            calls.append(("register_state_dict_pre_hook", hook, ""))
        for hook in state["_state_dict_hooks"].values():
            public = getattr(hook, "_from_public_api", False)
            calls.append(("register_state_dict_post_hook" if public else "_register_state_dict_hook", hook, ""))
        for hook in state["_load_state_dict_pre_hooks"].values():
            if isinstance(hook, _WrappedHook):
                if hook.with_module and hook.module() is not module:
                    self._fail(module, "it has a load-state-dict pre-hook bound to another layer")
                method = "register_load_state_dict_pre_hook" if hook.with_module else "_register_load_state_dict_pre_hook"
                calls.append((method, hook.hook, ""))
            else:
                calls.append(("_register_load_state_dict_pre_hook", hook, ""))
        for hook in state["_load_state_dict_post_hooks"].values():
            calls.append(("register_load_state_dict_post_hook", hook, ""))
        comment = f"# hooks of layer {name}, registered in the order they run\n"
        for method, hook, extra in calls:
            self._path.append(f"hook {method.strip('_').replace('register_', '')}")
            try:
                text = self.expr(hook, "hook")
            finally:
                self._path.pop()
            self.records.add(f"{comment}{name}.{method}({text}{extra})")
            comment = ""

    def _repacking(self, module: Any, name: str) -> tuple[set[str], list[str]]:
        """The attributes and sub-layers holding ``module``'s packed weights, and the calls packing them again.

        Packed weights (quantized layers) are TorchScript objects. The layers holding them unpack
        them to tensors (``_weight_bias()``) and pack tensors (``set_weight_bias``); the bundle stores
        the tensors by value and makes the same ``set_weight_bias`` call after the layer is rebuilt.
        """
        torch = self._torch
        rnn = sys.modules.get("torch.ao.nn.quantized.dynamic.modules.rnn")  # not imported: no such layer exists
        if isinstance(vars(module).get("_packed_params"), torch.ScriptObject) \
                and callable(getattr(module, "_weight_bias", None)) \
                and callable(getattr(module, "set_weight_bias", None)):
            weight, bias = module._weight_bias()  # a quantized Linear's packed parameters
            args = f"{self._packed_tensors(weight, name, 'weight')}, {self._packed_tensors(bias, name, 'bias')}"
            return {"_packed_params"}, [f"{name}.set_weight_bias({args})"]
        if rnn is not None and isinstance(module, rnn.RNNBase):  # LSTM, GRU: one packed cell per layer and direction
            self._check_reduce_range(module)
            unpacked = module._weight_bias()
            flat = {**unpacked["weight"], **unpacked["bias"]}  # the one dict its set_weight_bias takes
            calls = [f"{name}.set_weight_bias({self._packed_tensors(flat, name)})"]
            cells = module._all_weight_values  # made anew, in training mode, by set_weight_bias
            if any(_has_hooks(m) for m in cells.modules()):
                self._fail(module, "its packed cells (_all_weight_values) have hooks, which are not kept when "
                                   "set_weight_bias makes the cells anew")
            flags = [m.training for m in cells.modules()]
            if not any(flags):
                calls.append(f"{name}._all_weight_values.train(False)")
            elif not all(flags):
                calls.append(f"{name}._all_weight_values.training = {flags[0]}")
                calls += [f"{name}._all_weight_values[{i}].training = {flag}" for i, flag in enumerate(flags[1:])]
            return {"_all_weight_values"}, calls
        if rnn is not None and isinstance(module, rnn.RNNCellBase):  # LSTMCell, GRUCell, RNNCell
            unpacked = module._weight_bias()
            return ({"_packed_weight_ih", "_packed_weight_hh"},
                    [f"{name}.set_weight_bias({self._packed_tensors(unpacked, name)})"])
        return set(), []

    def _check_reduce_range(self, module: Any) -> None:
        """Refuse a quantized LSTM/GRU whose cells ``set_weight_bias`` would pack with another ``reduce_range``.

        ``set_weight_bias`` packs ``qint8`` cells with ``reduce_range`` set from the layer's ``version``
        (``version >= 2``); a layer whose cells say otherwise would compute differently once rebuilt.
        """
        expected = not (module.version is None or module.version < 2)
        for packed in module._all_weight_values:
            kind, _, _, flags, _ = packed.param.__getstate__()[0]
            if kind not in ("quantized_dynamic", "quantized_fp16"):
                self._fail(module, f"its packed cells are of kind {kind!r}, which set_weight_bias does not make")
            if kind == "quantized_dynamic" and bool(flags[0]) != expected:
                self._fail(module, f"its packed cells were made with reduce_range={bool(flags[0])} but its version "
                                   f"{module.version!r} packs them again with reduce_range={expected}")

    def _packed_tensors(self, value: Any, layer: str, key: str = "") -> str:
        """The text of an unpacked tensor, or of a dict of them, its tensors stored by value as weights.

        A tensor is stored as ``<layer>.<its key>`` (``lstm.weight_ih_l0``).
        """
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k!r}: {self._packed_tensors(v, layer, k)}" for k, v in value.items()) + "}"
        if value is None:
            return "None"
        self.names.keep(value)
        self._path.append("packed weights")
        try:
            return self._tensor_expr(value, f"{layer}.{key}", "weights")
        finally:
            self._path.pop()

    # --- torch.compile ------------------------------------------------------------------------------------

    def _define_compiled(self, module: Any, name: str) -> None:
        """``torch.compile(layer, ...)``: the original layer, compiled again with the same settings at load."""
        _, wrapped, _ = self._layer_class(module)
        inner = self.expr(module._orig_mod, type(module._orig_mod).__name__.lower())
        text = f"{self.need(self._torch, 'torch')}.compile({inner}, {self._compile_arguments(module.dynamo_ctx, module)})"
        if wrapped:
            text = f"_wb.transform({text})"
        comment = (f"# torch.compile of layer {type(module._orig_mod).__qualname__}: compiled again, with the same "
                   "backend and options, when the bundle loads\n")
        self.records.add(comment + f"{name} = {text}")

    def _compile_arguments(self, ctx: Any, module: Any) -> str:
        """The ``torch.compile`` keyword arguments that build a compiler like the one of ``ctx``."""
        torch = self._torch
        kinds = (torch._TorchCompileWrapper, torch._TorchCompileInductorWrapper)
        backend = ctx.callback
        while backend is not None and not isinstance(backend, kinds):
            backend = getattr(backend, "_torchdynamo_orig_backend", None)
        if backend is None:
            self._fail(module, "its torch.compile settings cannot be read back (compiled with torch._dynamo directly?)")
        args = []
        if isinstance(backend, torch._TorchCompileInductorWrapper):
            args.append("backend='inductor'")
            if backend.config:  # a mode is a name for options: they are saved as the options it set
                args.append(f"options={self.expr(dict(backend.config), 'options')}")
        else:
            from torch._dynamo.backends.registry import lookup_backend

            try:
                by_name = lookup_backend(backend.compiler_name) is backend.compiler_fn
            except Exception:  # not a registered name: the backend is a function of the user's
                by_name = False
            args.append(f"backend={backend.compiler_name!r}" if by_name
                        else f"backend={self.expr(backend.compiler_fn, 'backend')}")
            args += [f"{k}={self.expr(v, k)}" for k, v in backend.kwargs.items()]
        if ctx.fullgraph:
            args.append("fullgraph=True")
        if backend.dynamic is not None:
            args.append(f"dynamic={backend.dynamic!r}")
        return ", ".join(args)

    # --- TorchScript --------------------------------------------------------------------------------------

    def _define_script_module(self, module: Any, name: str) -> None:
        """A scripted or traced module: its program as TorchScript's own archive, its tensors as weights.

        The archive (``torch.jit.save`` of a copy whose parameters and buffers are emptied) holds the
        compiled code, the constants and the non-tensor attributes; ``torch.jit.load`` reads it with
        TorchScript's own reader, which builds only TorchScript values and runs no Python. The
        parameters and buffers go to ``weights.safetensors`` like any layer's and are put back after
        loading (tensors shared between sub-modules stay shared).
        """
        import copy
        import io

        torch = self._torch
        _, wrapped, _ = self._layer_class(module)
        stripped = copy.deepcopy(module)
        tensors = []
        for path, live, copied in _script_tensor_slots(module, stripped):
            attr = path.rpartition(".")[2]
            tensors.append(f"{path!r}: {self._weight_expr(getattr(live, attr), f'{name}.{path}', True)}")
            setattr(copied, attr, torch.empty(0, dtype=getattr(live, attr).dtype))
        buffer = io.BytesIO()
        try:
            torch.jit.save(stripped, buffer)
        except Exception as exc:
            self._fail(module, f"TorchScript cannot save it ({type(exc).__name__}: {exc})")
        archive = self.data.add_archive(name, buffer.getvalue())
        text = f"_bundle.script_module({archive!r}, {{{', '.join(tensors)}}})"
        if wrapped:
            text = f"_wb.transform({text})"
        kind = "traced" if isinstance(module, torch.jit.TracedModule) else "scripted"
        comment = (f"# TorchScript module {module.original_name} ({kind}): its program from artifacts/{archive}"
                   f".torchscript, {len(tensors)} tensors from weights.safetensors\n")
        self.records.add(comment + f"{name} = {text}")


def _dynamo_context(compiled: Any) -> Any:
    """The compile context of a ``layer.compile()``d call (kept in the closure torch builds for it)."""
    dynamo = sys.modules["torch._dynamo.eval_frame"]
    for cell in getattr(getattr(compiled, "get_compiler_config", None), "__closure__", None) or ():
        if isinstance(cell.cell_contents, dynamo._TorchDynamoContext):
            return cell.cell_contents
    return None


def _script_tensor_slots(live: Any, copied: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted path, live owner, copied owner)`` of every parameter and buffer of a TorchScript module."""
    slots = []
    for table in ("_parameters", "_buffers"):
        for attr, tensor in getattr(live, table).items():
            if tensor is not None:
                slots.append((prefix + attr, live, copied))
    for child_name, child in live._modules.items():
        if child is not None:
            slots.extend(_script_tensor_slots(child, getattr(copied, child_name), f"{prefix}{child_name}."))
    return slots

