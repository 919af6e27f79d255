"""The `fastsim` command line."""

import argparse
import json
import sys


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastsim", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="version, compiled backends, OpenMP threads, CUDA archs")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(run=_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `fastsim` command."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
