"""The `fastsim` command line.

Each subcommand lives in its own module of this package and contributes an `add_<command>(commands)` function
that adds its parser and sets `run` (the function that executes it) and `parser` (for error messages).
"""

import argparse
import json
import sys

from fastsim.cli.info_plane import add_info_plane
from fastsim.cli.simulate import add_plot, add_simulate
from fastsim.cli.train import add_rollout, add_train


def _info(args: argparse.Namespace) -> int:
    import fastsim

    info = fastsim.build_info()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            print(f"{key:<{width}}  {shown if shown not in ('', None) else '-'}")
    return 0


def add_info(commands) -> None:
    info = commands.add_parser(
        "info", help="version, compiled backends, CPU instruction set, OpenMP threads, CUDA archs"
    )
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(run=_info, parser=info)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastsim", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (add_info, add_simulate, add_plot, add_info_plane, add_train, add_rollout):
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `fastsim` command.

    Bad arguments, unreadable files and invalid settings end with a one-line message and exit status 2
    (argparse's `error`), not a traceback.
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return args.run(args)
    except (ValueError, TypeError, OSError) as err:
        args.parser.error(str(err))
