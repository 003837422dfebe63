"""IPython magics: ``%%pipeline``, ``%wb_deps`` and ``%wb_save``.

``%load_ext workbench`` (or ``import workbench`` inside IPython) registers them::

    %%pipeline classifier --check X[0] --save /tmp/digits.wb
    scale = transform(lambda x: torch.tensor(x, dtype=torch.float32) / 16)
    scale >> batch >> model >> unbatch >> transform(torch.argmax)

The cell's last expression is bound to ``classifier`` in the notebook, registered with
:mod:`workbench.registry` (the JupyterLab side panel lists it) and displayed. ``--check EXPR`` runs
it on one input and prints every step's output summary; ``--save PATH`` writes a bundle (with
``--check`` too, the bundle is loaded in a fresh interpreter and must agree on that input).
``%wb_deps NAME`` prints the source a bundle of ``NAME`` would contain (and what it would store, by
size) and ``%wb_save NAME PATH`` saves one, printing what it stored. Each magic also warns when the
pipeline holds a function or class the notebook has since redefined (:mod:`workbench.staleness`).
``NAME`` is looked up in the registry first, then among the notebook's variables.
"""

from __future__ import annotations

import ast
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from . import registry, tracking
from ._text import article, shorten
from .errors import PipelineNotFound
from .pipeline import Compose, Transform

__all__ = ["PipelineMagics", "summarize"]


@magics_class
class PipelineMagics(Magics):
    """The workbench magics (see the module docstring)."""

    @magic_arguments()
    @argument("name", help="the variable (and registry name) the pipeline is bound to")
    @argument("--save", metavar="PATH", default=None, help="save the pipeline as a bundle at PATH")
    @argument("--overwrite", action="store_true", help="with --save: replace an existing bundle")
    @argument("--check", metavar="EXPR", default=None, help="run the pipeline on EXPR, summarise every step")
    @cell_magic
    def pipeline(self, line: str, cell: str) -> Any:
        """Build a pipeline from the cell; its last expression is bound to NAME and registered."""
        args = _parse(self.pipeline, line)
        name = args.name
        if not name.isidentifier():
            raise UsageError(f"%%pipeline: {name!r} is not a valid Python name")
        if args.save is not None:  # a path that cannot take a bundle fails before the cell runs
            _check_save_path(f"%%pipeline {name} --save", args.save, args.overwrite,
                             f"add --overwrite to the %%pipeline {name} line")
        shell = self.shell
        transformed = shell.transform_cell(cell)
        filename = tracking._track_block(cell, transformed)
        try:
            tree = ast.parse(transformed, filename=filename)
        except SyntaxError as exc:
            raise UsageError(f"%%pipeline {name}: syntax error in the cell, line {exc.lineno}: {exc.msg}") from None
        if not tree.body or not isinstance(tree.body[-1], ast.Expr):
            what = type(tree.body[-1]).__name__ if tree.body else "nothing"
            text = ast.get_source_segment(transformed, tree.body[-1]) if tree.body else ""
            raise UsageError(
                f"%%pipeline {name}: the cell must end with an expression that builds the pipeline; "
                f"its last statement is {article(what)} {what} statement"
                + (f" ({_first_line(text)!r})" if text else "")
            )
        body = ast.Module(body=tree.body[:-1], type_ignores=[])
        last = ast.Expression(body=tree.body[-1].value)
        code_body = shell.compile(body, filename, "exec")
        code_last = shell.compile(last, filename, "eval")
        tracking._add_codes(filename, [code_body, code_last])
        exec(code_body, shell.user_global_ns, shell.user_ns)
        value = eval(code_last, shell.user_global_ns, shell.user_ns)
        if not isinstance(value, Transform):
            raise UsageError(
                f"%%pipeline {name}: the cell's last expression evaluates to {_describe_value(value)}, "
                "not a workbench pipeline (build one with transform(...), >>, +, / or ~)"
            )
        shell.user_ns[name] = value
        registry.register(name, value)
        _warn_stale(value, name)
        checked: list[Any] | None = None
        if args.check is not None:
            item = self._evaluate(args.check, f"%%pipeline {name} --check", _fixed_line(args, name))
            print(summarize(value, item))
            checked = [item]
        if args.save is not None:
            # with --check, the new bundle is also loaded in a fresh interpreter and must agree on the input
            path = _save(value, args.save, overwrite=args.overwrite, check=checked,
                         control=f"add --overwrite to the %%pipeline {name} line")
            if path is not None:
                print(f"saved {name} to {path}" + (" (checked in a fresh interpreter)" if checked else "")
                      + f"; manifest sha256 {_digest(path)}")
        return value

    @magic_arguments()
    @argument("name", help="a registered pipeline or a notebook variable holding one")
    @line_magic
    def wb_deps(self, line: str) -> None:
        """Print the source a bundle of NAME would contain, each part with the cell it came from."""
        args = _parse(self.wb_deps, line)
        pipeline = resolve(args.name, self.shell.user_ns)
        from .bundle.writer import capture

        _warn_stale(pipeline, args.name)
        captured = capture(pipeline)
        print(captured.source())
        print("# what a bundle would store besides code (sizes as written):")
        print("\n".join("# " + line for line in captured.report().text().splitlines()))

    @magic_arguments()
    @argument("name", help="a registered pipeline or a notebook variable holding one")
    @argument("path", help="where to write the bundle directory")
    @argument("--overwrite", action="store_true", help="replace an existing bundle")
    @line_magic
    def wb_save(self, line: str) -> None:
        """Save pipeline NAME as a bundle at PATH."""
        args = _parse(self.wb_save, line)
        pipeline = resolve(args.name, self.shell.user_ns)
        _check_save_path("%wb_save", args.path, args.overwrite, "add --overwrite to replace it")
        _warn_stale(pipeline, args.name)
        path = _save(pipeline, args.path, overwrite=args.overwrite, control="add --overwrite to replace it")
        if path is not None:
            print(f"saved {args.name} to {path}; manifest sha256 {_digest(path)}")

    def _evaluate(self, expr: str, where: str, fixed: str) -> Any:
        """``expr`` evaluated in the notebook; a text that is not an expression gets the quoted command."""
        try:
            code = compile(expr, "<--check>", "eval")
        except SyntaxError as exc:
            raise UsageError(
                f"{where}: {expr!r} is not a Python expression ({exc.msg}). --check takes a Python expression; "
                f"to pass a string, quote it inside the argument:\n    {fixed}"
            ) from None
        try:
            return eval(code, self.shell.user_global_ns, self.shell.user_ns)
        except NameError as exc:
            hint = ""
            if expr.strip().isidentifier():
                hint = f"; if you meant the string {expr.strip()!r}, quote it inside the argument:\n    {fixed}"
            raise UsageError(f"{where}: evaluating {expr!r} failed: NameError: {exc}{hint}") from exc
        except Exception as exc:
            raise UsageError(f"{where}: evaluating {expr!r} failed: {type(exc).__name__}: {exc}") from exc


def _fixed_line(args: Any, name: str) -> str:
    """The ``%%pipeline`` line with ``--check`` given the string it was probably meant to be."""
    parts = ["%%pipeline", name]
    if args.save is not None:
        parts += ["--save", shlex.quote(args.save)]
    if args.overwrite:
        parts.append("--overwrite")
    literal = repr(args.check)
    quoted = f'"{literal}"' if not any(c in literal for c in '"$`\\!') else shlex.quote(literal)
    return " ".join(parts + ["--check", quoted])


def _warn_stale(pipeline: Transform, name: str) -> None:
    from .staleness import stale_text

    text = stale_text(pipeline, name)
    if text:
        print(text)


def _parse(magic: Any, line: str) -> Any:
    """Arguments of ``magic``, split like a shell line: ``--check "x[0] * 2"`` is one expression."""
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"cannot parse {line!r}: {exc}") from None
    return magic.parser.parse_args(argv)


def resolve(name: str, namespace: dict[str, Any]) -> Transform:
    """The pipeline called ``name``: registered first, then a notebook variable (:func:`registry.lookup`);
    a usage error listing what exists otherwise."""
    try:
        return registry.lookup(name, namespace)[0]
    except PipelineNotFound as exc:
        raise UsageError(str(exc)) from None


def summarize(pipeline: Transform, item: Any) -> str:
    """One line per top-level step: its output on ``item`` (type, shape and dtype of tensors).

    Each step's output is computed as ``pipeline[:i + 1].infer_apply(item)``, so batching and
    unbatching behave as they do in ``infer_apply`` (a step between ``batch`` and ``unbatch`` shows
    its batch of one).

    >>> from workbench import transform
    >>> print(summarize(transform(lambda x: x + 1) >> transform(str), 1))
    [0] lambda x: x + 1 -> int 2
    [1] str -> str '2'
    """
    steps = list(pipeline._wb_children()) if isinstance(pipeline, Compose) else [pipeline]
    lines = []
    for i, step in enumerate(steps):
        prefix = pipeline[: i + 1] if isinstance(pipeline, Compose) else pipeline
        output = prefix.infer_apply(item)
        lines.append(f"[{i}] {step._wb_title()} -> {describe_value(output)}")
    return "\n".join(lines)


def describe_value(value: Any, limit: int = 60) -> str:
    """``Tensor[1, 10] float32``, ``ndarray[8, 8] float64``, ``tuple(2)`` or ``int 3``."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        dims = ", ".join(str(int(d)) for d in shape)
        return f"{type(value).__name__}[{dims}] {str(dtype).replace('torch.', '')}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(describe_value(v, 20) for v in list(value)[:4])
        more = ", ..." if len(value) > 4 else ""
        return f"{type(value).__name__}({len(value)}): {inner}{more}"
    return f"{type(value).__name__} {shorten(repr(value), limit, '...')}"


def _describe_value(value: Any) -> str:
    text = shorten(repr(value), 60, "...")
    return f"{article(type(value).__name__)} {type(value).__name__} ({text})"


def _save(pipeline: Transform, path: str, *, overwrite: bool, control: str, check: list[Any] | None = None) -> Any:
    """Save with the capture report printed; an existing bundle is named with this magic's own control.

    None when nothing was written because ``path`` is the output of a running ``workbench export``.
    """
    import os

    from .bundle import save
    from .bundle.writer import export_output

    target = os.path.expanduser(path)
    if export_output(target):  # inside `workbench export`, which writes this path itself
        save(pipeline, target)  # writes nothing and says so
        return None
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(f"{path} already exists; {control}")
    return save(pipeline, target, overwrite=overwrite, check=check, report=True)


def _check_save_path(where: str, path: str, overwrite: bool, control: str) -> None:
    """A one-line error, before anything runs, when ``path`` cannot take a bundle (``control``: how to replace)."""
    import os

    from .bundle.writer import check_target, export_output

    target = os.path.expanduser(path)
    if export_output(target):  # inside `workbench export`, which writes this path itself
        return
    if os.path.lexists(target) and not overwrite:
        raise UsageError(f"{where}: {path} already exists; {control}")
    try:
        check_target(target, overwrite)
    except OSError as exc:
        raise UsageError(f"{where}: {exc.strerror}") from None


def _digest(path: Any) -> str:
    from .bundle import digest

    return digest(path)


def _first_line(text: str) -> str:
    line = text.splitlines()[0] if text else ""
    return shorten(line, 60, "...")
