"""Rebuilding objects without pickle: torch layers, tensors, arrays, frames and other instances.

:class:`ObjectsMixin` is the part of :class:`~workbench.bundle.capture.Capture` that writes
``_bundle.module(...)``, ``_bundle.parameter(...)``, ``_bundle.array(...)`` and
``_bundle.instance(...)`` calls, collecting the tensors and data they read.

>>> import torch
>>> _is_wrapped(torch.nn.Linear)
False
"""

from __future__ import annotations

import copyreg
from typing import Any

__all__ = ["ObjectsMixin"]


def _is_wrapped(cls: type) -> bool:
    from ..transform import _WRAPPED

    base = vars(cls).get("_wb_base")
    return base is not None and _WRAPPED.get(base) is cls


def _dense_order(tensor: Any) -> tuple[int, ...] | None:
    """For a dense tensor whose strides are not row-major (a transpose), its dimensions in memory order.

    Math libraries take different code paths for different memory layouts, so a transposed weight is
    stored as its memory holds it and permuted back when loaded: same values, same strides.
    """
    if tensor.is_contiguous() or tensor.dim() < 2:
        return None
    order = tuple(sorted(range(tensor.dim()), key=lambda d: -tensor.stride(d)))
    return order if tensor.permute(order).is_contiguous() else None


class ObjectsMixin:
    """Tensors, data and instances (mixed into ``Capture``)."""

    # --- classes and tensors ---------------------------------------------------------------------------------

    def _class_expr(self, cls: type) -> str:
        if "_wb_base" in vars(cls) and _is_wrapped(cls):
            base = cls._wb_base
            return f"_wb.transform({self.expr(base, base.__name__)})"
        return self.expr(cls, cls.__name__)

    def _weight_expr(self, tensor: Any, key: str, parameter: bool) -> str:
        if tensor is None:
            return "None"
        return self._tensor_expr(tensor, key, "weights")

    def _tensor_expr(self, tensor: Any, key: str, store: str) -> str:
        torch = self._torch
        known = self.data.stored(tensor)
        if known is None and type(tensor) is torch.Tensor and tensor.is_quantized:
            return self._quantized_expr(tensor, key, store)
        if known is None:
            if isinstance(tensor, torch.nn.parameter.UninitializedTensorMixin):
                self._fail(tensor, "it is an uninitialized parameter of a lazy layer (run the layer once before "
                                   "saving, so its parameters have values)")
            if type(tensor) not in (torch.Tensor, torch.nn.Parameter) or tensor.is_sparse or tensor.is_quantized \
                    or tensor.layout != torch.strided:
                self._fail(tensor, f"it is a {type(tensor).__name__} with layout {tensor.layout}; only dense tensors "
                                   "and parameters are stored")
            from .artifacts import storable_dtype

            if not storable_dtype(tensor.dtype):
                self._fail(tensor, f"it is a tensor of dtype {tensor.dtype}, which safetensors cannot store")
            view = self._view_of(tensor)
            if view is not None:
                return view
            data = tensor.detach()
            if data.device.type != "cpu":
                data = data.cpu()
            dims = _dense_order(data)
            if dims is not None:  # stored in memory order, given back with the same strides
                data = data.permute(dims)
            known = self.data.add_tensor(tensor, data.contiguous(), key, store, dims)
        store, key, dims = known.store, known.key, known.dims
        if store == "view":
            return key
        kind = "parameter" if isinstance(tensor, torch.nn.Parameter) else "tensor"
        args = [repr(key)]
        if store == "weights":
            args.append("weights=True")
        if dims is not None:
            args.append(f"dims={dims!r}")
        if isinstance(tensor, torch.nn.Parameter):
            if not tensor.requires_grad:
                args.append("requires_grad=False")
        elif tensor.requires_grad:
            args.append("requires_grad=True")
        if tensor.device.type != "cpu":
            args.append(f"device={str(tensor.device)!r}")
        return f"_bundle.{kind}({', '.join(args)})"

    def _view_of(self, tensor: Any) -> str | None:
        """For a tensor sharing memory with one already stored: the expression re-making it as a view.

        Tensors whose bytes overlap share memory live (a buffer that is a view of a parameter); a
        bundle keeps that when the new one lies inside an earlier stored contiguous tensor of the same
        dtype, and refuses other overlaps by name. Tensors that merely share a storage without
        overlapping are stored independently (nothing observable is lost).
        """
        if not tensor.numel():
            return None
        other = self.data.overlapping(tensor)
        if other is None:
            return None
        other_key = self.data.stored(other).key
        if not self.data.holds_inside(other, tensor):
            self._fail(tensor, f"it shares memory with the tensor stored as {other_key!r} "
                               "in a way a bundle cannot rebuild (only a view inside an earlier contiguous "
                               "tensor of the same dtype is kept); clone one of them")
        base = self._tensor_expr(other, "", "")
        offset = tensor.storage_offset() - other.storage_offset()
        args = [base, repr(list(tensor.shape)), repr(list(tensor.stride())), str(offset)]
        if isinstance(tensor, self._torch.nn.Parameter):
            args.append("parameter=True")
        if tensor.requires_grad:
            args.append("requires_grad=True")
        name = self.names.fresh("_view")
        self.names.bind(name, ("view", name))
        self.records.add(f"# a view of {other_key!r}, sharing its memory as it did live\n"
                         f"{name} = _bundle.view({', '.join(args)})")
        self.data.add_view(tensor, name)
        return name

    def _quantized_expr(self, tensor: Any, key: str, store: str) -> str:
        """A quantized tensor by value: its integer values as a tensor, its scales and zero points beside them."""
        torch = self._torch
        values = self._tensor_expr(tensor.int_repr(), key, store)
        scheme = tensor.qscheme()
        if scheme == torch.per_tensor_affine:
            return f"_bundle.quantized({values}, scale={tensor.q_scale()!r}, zero_point={tensor.q_zero_point()!r})"
        if scheme in (torch.per_channel_affine, torch.per_channel_affine_float_qparams):
            scales = self._tensor_expr(tensor.q_per_channel_scales(), f"{key}.scales", store)
            zero_points = self._tensor_expr(tensor.q_per_channel_zero_points(), f"{key}.zero_points", store)
            return (f"_bundle.quantized({values}, scales={scales}, zero_points={zero_points}, "
                    f"axis={tensor.q_per_channel_axis()})")
        self._fail(tensor, f"it is a quantized tensor with scheme {scheme}, which bundles cannot store")
        raise AssertionError  # _fail raises

    # --- data ---------------------------------------------------------------------------------------------------

    def _array_expr(self, array: Any, hint: str) -> str:
        if array.dtype.hasobject:
            self._fail(array, "it is a numpy array of Python objects, which cannot be stored without pickle")
        return f"_bundle.array({self.data.add_array(hint, array)!r})"

    def _frame_expr(self, frame: Any, hint: str) -> str:
        from .artifacts import check_frame

        problem = check_frame(frame)
        if problem:
            self._fail(frame, problem)
        return f"_bundle.frame({self.data.add_frame(hint, frame)!r})"

    # --- other instances ------------------------------------------------------------------------------------------

    def _define_instance(self, obj: Any, name: str) -> None:
        cls = type(obj)
        self._path.append(f"{cls.__name__} instance")
        try:
            base = cls._wb_base if "_wb_base" in vars(cls) and _is_wrapped(cls) else cls
            try:
                reduced = base.__reduce_ex__(obj, 4)
            except Exception as exc:
                self._fail(obj, f"it cannot be stored by value or re-created ({exc})")
            if isinstance(reduced, str):
                self._fail(obj, f"it is a global named {reduced!r} that could not be imported")
            func, args, state, listitems, dictitems = (tuple(reduced) + (None,) * 5)[:5]
            if func is copyreg.__newobj__ and args and args[0] is cls:
                parts = [self._class_expr(cls)]
                if state is not None:
                    parts.append(self.expr(state, "state"))
                if len(args) > 1:
                    parts.append("args=" + self.expr(tuple(args[1:]), "args"))
            else:
                if func is copyreg.__newobj__ or func is getattr(copyreg, "__newobj_ex__", None):
                    self._fail(obj, "its pickling protocol cannot be reproduced")
                parts = ["reduce=" + self.expr(func, "factory"), "args=" + self.expr(tuple(args or ()), "args")]
                if state is not None:
                    parts.insert(0, "None")
                    parts.insert(1, self.expr(state, "state"))
                else:
                    parts.insert(0, "None")
            if listitems is not None:
                parts.append("items=" + self.expr(list(listitems), "items"))
            if dictitems is not None:
                parts.append("mapping=" + self.expr(dict(dictitems), "mapping"))
            self.records.add(f"{name} = _bundle.instance({', '.join(parts)})")
        finally:
            self._path.pop()
