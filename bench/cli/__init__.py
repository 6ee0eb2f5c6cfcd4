"""`layerbench` command line. Each sibling module adds its subcommands through `register`.

A module here declares `ORDER` (its place in `--help`) and `register(subparsers)`; the
handlers it sets as `func` take the parsed args and return an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from bench import __version__
from bench.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layerbench",
        description="Layer-wise SUPERB-style probing and CCA analysis of self-supervised speech models.",
    )
    parser.add_argument("--version", action="version", version=f"layerbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)]
    for module in sorted(modules, key=lambda m: m.ORDER):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (ConfigError, FileNotFoundError, KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"layerbench {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
