"""Argument types shared by the `fastsim` subcommands."""

import argparse


def number(kind: type, name: str, minimum: int | None = None):
    """An argparse `type`: an int or float (an int at least `minimum` when given), with a message naming the
    option."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} takes {kind.__name__} values; got {text!r}") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be >= {minimum}; got {value}")
        return value

    return parse
