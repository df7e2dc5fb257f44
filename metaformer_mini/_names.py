"""Check a named choice (a mixer, a norm, a model) or a number's range, with a helpful error."""
from __future__ import annotations

import argparse
import difflib
from typing import Callable, Iterable, Mapping, TypeVar

T = TypeVar("T")


def lookup(kind: str, name: str, choices: Mapping[str, T]) -> T:
    """Return ``choices[name]``; an unknown name raises ValueError naming the closest choice."""
    if not isinstance(name, str):
        raise TypeError(f"{kind} must be a name (str), got {type(name).__name__} {name!r}; "
                        f"allowed: {', '.join(sorted(choices))}")
    key = name.lower()
    if key in choices:
        return choices[key]
    raise ValueError(unknown_message(kind, name, choices))


def unknown_message(kind: str, name: str, choices: Iterable[str]) -> str:
    """Return "unknown <kind> 'x'; did you mean 'y'? Allowed: ..." (no hint when nothing is close)."""
    choices = sorted(choices)
    close = difflib.get_close_matches(str(name).lower(), choices, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else "."
    return f"unknown {kind} {name!r}{hint} Allowed: {', '.join(choices)}"


def check_range(name: str, value: float, interval: str) -> None:
    """Raise ValueError naming ``name`` and ``value`` unless ``value`` lies in ``interval``.

    ``interval`` is written as in mathematics: "[0, 1)", "(0, inf)".
    """
    low, high = (float(end) for end in interval[1:-1].split(","))
    above = low <= value if interval[0] == "[" else low < value
    below = value <= high if interval[-1] == "]" else value < high
    if not (above and below):
        allowed = {"(0, inf)": "positive", "[0, inf)": "0 or more",
                   "[1, inf)": "1 or more"}.get(interval, f"in {interval}")
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def flag(interval: str, kind: Callable[[str], T] = int) -> Callable[[str], T]:
    """Return an argparse ``type=`` that parses a ``kind`` and checks it lies in ``interval``.

    argparse names the flag: ``argument --batch: must be 1 or more, got 0``.
    """
    def parse(text: str) -> T:
        value = kind(text)  # not a number: argparse reports "invalid int value: 'x'"
        try:
            check_range("", value, interval)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err).lstrip()) from None
        return value
    parse.__name__ = getattr(kind, "__name__", "value")
    return parse
