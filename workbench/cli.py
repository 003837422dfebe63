"""The ``workbench`` command line (console script ``workbench = "workbench.cli:main"``).

Each subcommand is a function that adds its parser to :data:`COMMANDS`-driven setup and a handler
returning an exit code, so new subcommands slot in by adding one ``_add_<name>`` function to
``COMMANDS``.

Exit codes (all subcommands; also in ``workbench --help`` and docs/cli.md):

- ``0`` success;
- ``1`` the work failed: a notebook cell raised, the pipeline name is missing, saving or its check
  failed, the bundle's code failed to load, the pipeline raised on an input;
- ``2`` usage error: a wrong command line (from argparse), a notebook or input file that does not
  exist, an input that is not valid JSON (or nested too deeply, or a number too long), an output
  path that exists without ``--overwrite``;
- ``3`` invalid bundle: no bundle at the path, a malformed manifest, a missing, truncated, edited or
  unexpected file, a path outside the bundle, or a manifest sha256 other than ``--expect``
  (the message on stderr names it).

>>> main(["info", "model.wb"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable, Sequence

from ._text import describe_error

__all__ = ["main", "build_parser", "COMMANDS", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_BUNDLE"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUNDLE = 3

EXIT_CODES = """exit codes:
  0  success
  1  the work failed: a notebook cell raised, the pipeline name is missing, saving or its
     check failed, the bundle's code failed to load, the pipeline raised on an input
  2  usage error: bad command line, a notebook or input file that does not exist, an input
     that is not valid JSON (or nested too deeply, or a number too long), an output path that
     exists without --overwrite
  3  invalid bundle: no bundle at the path, a malformed manifest, a missing, truncated, edited
     or unexpected file, a path outside the bundle, a manifest sha256 other than --expect"""

Handler = Callable[[argparse.Namespace], int]


def _add_info(sub: Any) -> None:
    p = sub.add_parser("info", help="show a bundle's manifest, structure and source without executing it",
                       description="Show a bundle's manifest, pipeline structure, definitions (with where each "
                                   "came from), requirements, files and source. Nothing from the bundle is "
                                   "imported or executed; every file's hash is checked.",
                       epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="path of the bundle directory")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON instead")
    p.add_argument("--no-source", action="store_true", help="leave out the source")
    p.add_argument("--expect", metavar="DIGEST", default=None,
                   help="exit 3 unless the manifest's sha256 (the first line of the report) is DIGEST")
    p.set_defaults(handler=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    from .bundle import snapshot as _snapshot
    from .errors import IntegrityError
    from .bundle.info import render_info

    if args.expect is not None:
        wanted = args.expect.strip().lower()
        if len(wanted) != 64 or set(wanted) - set("0123456789abcdef"):
            return _fail("info", f"--expect needs a sha256 digest (64 hex digits), not {args.expect!r}", EXIT_USAGE)
    try:
        if args.json:
            snap = _snapshot.read(args.bundle, tolerate=True)
            print(json.dumps(snap.manifest, indent=1))
            problem, digest = snap.problem, snap.digest
        else:
            text, problem, digest = render_info(args.bundle, show_source=not args.no_source)
            sys.stdout.write(text)
    except IntegrityError as exc:
        return _fail("info", str(exc), EXIT_BUNDLE)
    if problem:
        return _fail("info", problem, EXIT_BUNDLE)
    if args.expect is not None and args.expect.strip().lower() != digest:
        return _fail("info", f"manifest sha256 is {digest}, expected {args.expect.strip().lower()}: this is not "
                             "the bundle that was pinned", EXIT_BUNDLE)
    return EXIT_OK


# --- export -------------------------------------------------------------------------------------


def _add_export(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export",
        help="run a notebook headless and save one of its pipelines as a bundle",
        description=_paragraph(
            "Run NOTEBOOK from top to bottom in a fresh Jupyter kernel (in the notebook's directory, with cell "
            "tracking on; the notebook file is not modified), then save pipeline NAME from that kernel as a "
            "bundle at PATH. NAME is a pipeline registered with %%pipeline NAME, else a notebook variable "
            "holding a workbench pipeline. Progress goes to stderr, the bundle's path to stdout. Nothing is "
            "written when a cell fails, NAME is missing, saving is refused or the check fails."
        ),
        epilog=_paragraph(
            "check inputs: --check-inputs EXPR is evaluated in the kernel after the notebook ran and gives a "
            "list of example inputs; without it, --check uses the --check EXPR of the %%pipeline NAME cell. "
            "The bundle is loaded in a fresh process on those inputs and must give the same outputs."
        ) + "\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("notebook", metavar="NOTEBOOK", help="the .ipynb file to run")
    parser.add_argument("--pipeline", "-p", metavar="NAME", required=True, help="the pipeline to save")
    parser.add_argument("--out", "-o", metavar="PATH", required=True, help="where to write the bundle directory")
    parser.add_argument("--check", action="store_true",
                        help="re-run the saved bundle in a fresh process on example inputs and compare")
    parser.add_argument("--check-inputs", metavar="EXPR", default=None,
                        help="a Python expression, evaluated in the kernel, giving the list of check inputs "
                             "(implies --check)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing bundle (and --executed file); a save to the same path by the "
                             "notebook's own cells is skipped during the export, whatever its own flags")
    parser.add_argument("--timeout", metavar="S", type=_positive_int, default=None,
                        help="stop a cell that runs longer than S whole seconds (default: no limit)")
    parser.add_argument("--executed", metavar="FILE", default=None,
                        help="also write the executed notebook, with its outputs, to FILE (on success)")
    parser.add_argument("--kernel", metavar="NAME", default="python3",
                        help="the Jupyter kernel to run it in (default: python3)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from .errors import ExportError, NotebookFailed
    from .export import export_notebook

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        result = export_notebook(
            args.notebook, args.pipeline, args.out, overwrite=args.overwrite, check=args.check,
            check_inputs=args.check_inputs, timeout=args.timeout, executed=args.executed,
            kernel_name=args.kernel, progress=None if args.quiet else progress,
        )
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        return _fail("export", str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("export", "interrupted; the kernel was shut down and nothing was written", 130)
    except ExportError as exc:
        detail = getattr(exc, "traceback", "")
        if isinstance(exc, NotebookFailed) and detail:
            print(detail.rstrip(), file=sys.stderr)
        return _fail("export", f"{exc}; nothing was written", EXIT_FAILED)
    if args.quiet:  # without progress lines the warnings are still worth reading
        for message in result.warnings:
            print(f"workbench export: warning: {message}", file=sys.stderr)
    checked = f", checked on {result.checked} input{'s' * (result.checked != 1)}" if result.checked else ""
    if not args.quiet:
        from .bundle import digest

        print(f"saved {result.name!r} ({result.found_in}) after {result.cells} cells in {result.seconds:.1f} s"
              f"{checked}; manifest sha256 {digest(result.path)}", file=sys.stderr)
    print(result.path)
    return EXIT_OK


def _paragraph(text: str) -> str:
    import textwrap

    return textwrap.fill(text, width=92)


def _number(convert: Callable[[str], Any], noun: str, ok: Callable[[Any], bool], rule: str) -> Callable[[str], Any]:
    """An argparse ``type=``: ``convert`` the text, refuse it unless ``ok``; errors say the ``noun`` and the ``rule``.

    >>> _positive_int("3"), _port("8000")
    (3, 8000)
    """
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{text!r} {rule}")
        return value

    return parse


_positive_float = _number(float, "a number of seconds", lambda v: v > 0, "must be more than 0 seconds")
_positive_int = _number(int, "a whole number", lambda v: v >= 1, "must be at least 1")
_non_negative_float = _number(float, "a number", lambda v: v >= 0, "must be 0 or more")
_port = _number(int, "a port number", lambda v: 0 <= v <= 65535, "is not a port number (0-65535)")


# --- predict ------------------------------------------------------------------------------------


def _add_predict(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "predict",
        help="run a bundle on JSON inputs and print its outputs as JSON lines",
        description=_paragraph(
            "Load BUNDLE (this runs its source: use 'workbench info' first for bundles you do not trust) and "
            "run it on each INPUT, a JSON value (or raw text with --lines), or on each line of a file. Prints one JSON line per "
            "input on stdout, in order; anything the pipeline prints goes to stderr. Inputs reach the pipeline "
            "as decoded JSON (lists, dicts, numbers, strings), or as tensors/arrays with --as."
        ),
        epilog=_paragraph(
            "outputs: tensors and numpy arrays become nested lists (0-d: a number), tuples lists, named tuples "
            "and dataclasses objects, dicts objects. NaN and infinities, which JSON lacks, are written per "
            "--non-finite: as the strings \"NaN\", \"Infinity\", \"-Infinity\" (default), as null, or refused. "
            "Inputs may use the literals NaN, Infinity and -Infinity. With --lines, inputs are raw text (one string "
            "per argument or per line). Each input is read and run on its own: a bad input (not JSON, or one the "
            "pipeline fails on) is reported on stderr by its number or line and gets no output line, the others "
            "are still printed, and the exit code is non-zero (1 if the pipeline failed on any, else 2)."
        ) + "\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # INPUTs may come before, between or after the options: parse them intermixed.
    parser.__class__ = _IntermixedParser
    parser.add_argument("bundle", metavar="BUNDLE", help="a bundle directory written by workbench.save or export")
    parser.add_argument("inputs", metavar="INPUT", nargs="*", help="a JSON value, e.g. '[1, 2]' or '\"text\"'")
    parser.add_argument("--file", "-f", metavar="F", default=None,
                        help="read inputs from a JSON-lines file, one value per line ('-': stdin)")
    parser.add_argument("--lines", action="store_true",
                        help="inputs are raw text, not JSON: each argument, or each line of --file, is one "
                             "string input (for text models)")
    parser.add_argument("--batch-size", "-b", metavar="N", type=_positive_int, default=None,
                        help="run in batches of N with eval_apply (default: infer_apply, one input at a time)")
    parser.add_argument("--as", dest="as_type", choices=("json", "tensor", "numpy"), default="json",
                        help="hand inputs to the pipeline as decoded JSON (default), torch tensors or numpy arrays")
    parser.add_argument("--dtype", metavar="DTYPE", default=None,
                        help="element type for --as tensor/numpy, e.g. float32")
    parser.add_argument("--non-finite", choices=("string", "null", "error"), default="string",
                        help="how NaN/Infinity outputs are written (default: string)")
    parser.add_argument("--names", action="store_true",
                        help="write class names (from workbench.annotate or the model's config.id2label): a class "
                             "index output becomes its name, a vector of one score per class an object name: score")
    parser.set_defaults(handler=_run_predict)


class _IntermixedParser(argparse.ArgumentParser):
    """Positionals and options in any order (``predict B --non-finite null '[0, 1]'``)."""

    _intermixing = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._intermixing:
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def _run_predict(args: argparse.Namespace) -> int:
    import contextlib

    from .errors import EncodeError, InputError, NamesError
    from .predict import converter, decode, read_lines, to_json, with_names

    if args.file is not None and args.inputs:
        return _fail("predict", "give inputs either as arguments or with --file, not both", EXIT_USAGE)
    if args.file is None and not args.inputs:
        what = "text arguments" if args.lines else "JSON values as arguments"
        return _fail("predict", f"no inputs: give {what}, or --file F (- for stdin)", EXIT_USAGE)
    if args.lines and args.as_type != "json":
        return _fail("predict", "--lines hands each line to the pipeline as a string; it cannot be combined "
                                "with --as tensor/numpy", EXIT_USAGE)
    from .bundle import BundleError, load
    from .bundle import snapshot as _snapshot

    try:
        _snapshot.read(args.bundle, verify=False)  # no bundle there: say so before reading any input
    except BundleError as exc:
        return _fail("predict", str(exc), EXIT_BUNDLE)
    try:
        entries = read_lines(args.file) if args.file is not None else \
            [(f"input {i}", text) for i, text in enumerate(args.inputs, 1)]
        convert = converter(args.as_type, args.dtype)
    except InputError as exc:
        return _fail("predict", str(exc), EXIT_USAGE)
    # Each input is read on its own: a bad one is reported and the others still run.
    items: list[tuple[str, Any]] = []
    bad_inputs = 0
    for where, text in entries:
        try:
            items.append((where, convert(text if args.lines else decode(text, where), where)))
        except InputError as exc:
            _fail("predict", str(exc), EXIT_USAGE)
            bad_inputs += 1

    lines: list[str] = []
    failures = 0
    # stdout carries only the JSON lines: whatever the bundle's code prints goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            pipeline = load(args.bundle)
        except BundleError as exc:
            return _fail("predict", str(exc), EXIT_BUNDLE)
        except Exception as exc:
            return _fail("predict", f"loading bundle {args.bundle} failed: {describe_error(exc)}", EXIT_FAILED)
        names = None
        if args.names:
            from .annotations import class_names

            names = class_names(pipeline)
            if names is None:
                return _fail("predict", f"--names: bundle {args.bundle} has no class names; save it after "
                                        "workbench.annotate(pipeline, class_names=[...])", EXIT_USAGE)
        for group, outputs, error in _predict_groups(pipeline, items, args.batch_size):
            if error is not None:
                failures += 1
                _fail("predict", f"the pipeline failed on {group}: {error}", EXIT_FAILED)
                continue
            for where, output in outputs:
                try:
                    if names is not None:
                        output = with_names(output, names, where)
                    lines.append(to_json(output, args.non_finite))
                except EncodeError as exc:
                    failures += 1
                    _fail("predict", f"the output for {where} cannot be written as JSON: {exc}", EXIT_FAILED)
                except NamesError as exc:
                    failures += 1
                    _fail("predict", str(exc), EXIT_FAILED)
    if lines:
        try:
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:  # `workbench predict ... | head`: the reader has what it wanted
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
    if failures or bad_inputs:
        skipped = failures + bad_inputs
        print(f"workbench predict: {len(lines)} of {len(entries)} inputs gave an output; "
              f"{skipped} reported above {'has' if skipped == 1 else 'have'} no output line", file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_USAGE if bad_inputs else EXIT_OK


def _predict_groups(pipeline: Any, items: list[tuple[str, Any]], batch_size: int | None) -> Any:
    """``(what, [(where, output)], error)`` per input (or per batch of inputs with ``batch_size``)."""
    from .predict import predict

    size = batch_size or 1
    for start in range(0, len(items), size):
        group = items[start:start + size]
        what = group[0][0] if len(group) == 1 else f"the batch of {group[0][0]} to {group[-1][0]}"
        try:
            outputs = list(predict(pipeline, [value for _, value in group], batch_size=batch_size))
        except Exception as exc:
            yield what, [], describe_error(exc)
            continue
        if len(outputs) != len(group):
            yield what, [], f"it gave {len(outputs)} outputs for {len(group)} inputs"
            continue
        yield what, [(where, output) for (where, _), output in zip(group, outputs)], None


# --- serve --------------------------------------------------------------------------------------


def _add_serve(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve a bundle over HTTP, batching concurrent requests",
        description=_paragraph(
            "Serve BUNDLE over HTTP (uvicorn and Starlette; needs the 'serve' extra). POST /predict takes one "
            "JSON input, or {\"inputs\": [...]}, and answers in the JSON encoding of 'workbench predict'; "
            "GET /health, /ready, /info, /metrics (Prometheus) and /openapi.json report on the server. Inputs "
            "from concurrent requests are preprocessed one by one, run through the forward stage as one batch "
            "of up to --max-batch, and postprocessed one by one. Every file of the bundle is checked before "
            "the port is opened. SIGTERM or Ctrl-C stops accepting requests, answers the accepted ones, then exits."
        ),
        epilog=_paragraph(
            "errors: a body that is not JSON gets 400; an input the pipeline rejects gets 422 with the step "
            "named, and fails alone; 503 with Retry-After while loading or when --queue inputs are waiting; "
            "504 past --timeout-s. See docs/serving.md."
        ) + "\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bundle", metavar="BUNDLE", help="a bundle directory written by workbench.save or export")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8000, help="the port (default: 8000; 0 picks a free one)")
    parser.add_argument("--max-batch", metavar="N", type=_positive_int, default=32,
                        help="at most N inputs per forward batch (default: 32; 1 runs each input alone)")
    parser.add_argument("--max-wait-ms", metavar="MS", type=_non_negative_float, default=5.0,
                        help="how long a free pipeline waits for more inputs to join a batch (default: 5)")
    parser.add_argument("--workers", metavar="N", type=_positive_int, default=1,
                        help="server processes sharing the port, each with its own copy of the pipeline (default: 1)")
    parser.add_argument("--threads", metavar="N", type=_positive_int, default=None,
                        help="torch threads per worker (default: torch's own with one worker, cores / workers otherwise)")
    parser.add_argument("--queue", metavar="N", type=_positive_int, default=256,
                        help="at most N inputs waiting; more get 503 with Retry-After (default: 256)")
    parser.add_argument("--timeout-s", metavar="S", type=_positive_float, default=30.0,
                        help="answer 504 when a request takes longer than S seconds (default: 30)")
    parser.add_argument("--as", dest="as_type", choices=("json", "tensor", "numpy"), default="json",
                        help="hand inputs to the pipeline as decoded JSON (default), torch tensors or numpy arrays")
    parser.add_argument("--dtype", metavar="DTYPE", default=None, help="element type for --as tensor/numpy")
    parser.add_argument("--non-finite", choices=("string", "null", "error"), default="string",
                        help="how NaN/Infinity outputs are written (default: string)")
    parser.add_argument("--no-names", dest="names", action="store_false",
                        help="do not add class names (labels) from the bundle's annotations")
    parser.add_argument("--warmup", metavar="JSON", action="append", default=[],
                        help="an example input run before /ready answers 200 (repeatable); it must succeed")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                        help="uvicorn's log level (default: info)")
    parser.set_defaults(handler=_run_serve)


def _run_serve(args: argparse.Namespace) -> int:
    from .predict import InputError, convert_inputs, parse_inputs

    try:
        import uvicorn  # noqa: F401
        import starlette  # noqa: F401
        import prometheus_client  # noqa: F401
    except ImportError as exc:
        return _fail("serve", f"{exc.name} is not installed: pip install 'workbench[serve]'", EXIT_USAGE)
    from .bundle import BundleError
    from .serving.app import Settings
    from .serving.server import run

    try:
        warmup = parse_inputs(args.warmup, where="--warmup")
        convert_inputs(warmup, args.as_type, args.dtype)
    except InputError as exc:
        return _fail("serve", str(exc), EXIT_USAGE)
    settings = Settings(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, queue=args.queue,
                        timeout_s=args.timeout_s, as_type=args.as_type, dtype=args.dtype,
                        non_finite=args.non_finite, names=args.names, warmup=warmup)
    try:
        return run(args.bundle, settings, host=args.host, port=args.port, workers=args.workers,
                   threads=args.threads, log_level=args.log_level)
    except BundleError as exc:
        return _fail("serve", str(exc), EXIT_BUNDLE)


def _fail(command: str, message: str, code: int) -> int:
    print(f"workbench {command}: {message}", file=sys.stderr)
    return code


COMMANDS: list[Callable[[Any], None]] = [_add_info, _add_export, _add_predict, _add_serve]
"""Functions adding one subcommand each to the subparsers (they set ``handler`` on their parser)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Work with workbench pipelines: export a notebook's pipeline as a bundle, look inside "
                    "a bundle without running it, run a bundle on JSON inputs, serve a bundle over HTTP.",
        epilog=EXIT_CODES + "\n\nrun 'workbench COMMAND --help' for a command's options",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
