"""The ``workbench`` command line (console script ``workbench = "workbench.cli:main"``).

Each subcommand is a function that adds its parser to :data:`COMMANDS`-driven setup and a handler
returning an exit code, so new subcommands slot in by adding one ``_add_<name>`` function to
``COMMANDS``.

Exit codes (all subcommands):

- ``0`` success;
- ``1`` the command ran but failed: e.g. the bundle is missing, is not a bundle, or has a missing,
  truncated, edited or unexpected file (the message on stderr names it);
- ``2`` the command line is wrong (unknown subcommand or option; from argparse).

>>> main(["info", "model.wb"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

__all__ = ["main", "build_parser", "COMMANDS", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace], int]


def _add_info(sub: Any) -> None:
    p = sub.add_parser("info", help="show a bundle's manifest, structure and source without executing it",
                       description="Show a bundle's manifest, pipeline structure, definitions (with where each "
                                   "came from), requirements, files and source. Nothing from the bundle is "
                                   "imported or executed; every file's hash is checked.")
    p.add_argument("bundle", help="path of the bundle directory")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON instead")
    p.add_argument("--no-source", action="store_true", help="leave out the source")
    p.set_defaults(handler=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    from .bundle.errors import IntegrityError
    from .bundle.info import render_info
    from .bundle import manifest as _manifest

    try:
        if args.json:
            data = _manifest.read(args.bundle)
            print(json.dumps(data, indent=1))
            _manifest.verify(args.bundle, data)
            return EXIT_OK
        text, problem = render_info(args.bundle, show_source=not args.no_source)
    except IntegrityError as exc:
        print(f"workbench info: {exc}", file=sys.stderr)
        return EXIT_FAILED
    sys.stdout.write(text)
    if problem:
        print(f"workbench info: {problem}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


COMMANDS: list[Callable[[Any], None]] = [_add_info]
"""Functions adding one subcommand each to the subparsers (they set ``handler`` on their parser)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Work with workbench pipeline bundles.",
        epilog="exit codes: 0 success, 1 the command failed (message on stderr), 2 bad command line",
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
