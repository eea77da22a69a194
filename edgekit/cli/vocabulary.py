"""One vocabulary of flags (DESIGN.md "One vocabulary of flags"): the pieces every command line shares.

Every ``edgekit`` subcommand spells the same thing the same way (``--seq-len`` tokens, ``--out`` a
folder, ``--output`` a file, ``--warmup`` runs, ``--warmup-fraction`` of training steps, one
``--mixed-precision``). A retired spelling stays for one release as a hidden alias
(``retired``): it stores into the new flag's destination and prints one deprecation line on
stderr. The CLI (``edgekit.cli``) and the distill stage's parsers (``edgekit.distill``) both use
this; ``tests/test_vocabulary.py`` walks every parser against the table in DESIGN.md.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Sequence

#: Every value ``--mixed-precision`` may take; a command offers the ones it supports.
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")


class _Retired(argparse.Action):
    """A retired spelling: the value goes (through ``convert``) to the new flag's ``dest``, with a note."""

    def __init__(self, option_strings: Sequence[str], dest: str, new: str = "",
                 convert: Callable[[Any], Any] | None = None, **kwargs: Any) -> None:
        self.new, self.convert = new, convert
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        value = self.convert(values) if self.convert else values
        shown = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        print(f"edgekit: note: {option_string} is deprecated and will be removed; use {self.new} {shown}",
              file=sys.stderr)
        setattr(namespace, self.dest, value)


def retired(p: Any, old: str, new: str, convert: Callable[[Any], Any] | None = None,
            choices: Sequence[str] | None = None, type: Callable[[str], Any] | None = None) -> None:
    """Add ``old`` as a hidden alias of the already added option ``new`` of ``p`` (a parser or an
    argument group): same destination and (unless given) the same type and choices, help hidden,
    a one-line deprecation note on stderr when used. ``convert`` maps an old value to the new
    flag's (``--bf16 yes`` -> ``bf16``)."""
    action = p._option_string_actions[new]
    p.add_argument(old, dest=action.dest, action=_Retired, new=new, convert=convert,
                   type=type if type is not None else (action.type if convert is None else None),
                   choices=choices if choices is not None else (action.choices if convert is None else None),
                   metavar=action.metavar, default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def is_retired(action: argparse.Action) -> bool:
    """Whether ``action`` is a retired spelling (``retired``)."""
    return isinstance(action, _Retired)


def plain(text: str) -> str:
    """A docstring paragraph as ``--help`` text: no reStructuredText markup (``x``, :func:`x`), one line."""
    import re

    text = re.sub(r":[a-z]+:`~?([^`]*)`", r"\1", text)
    return " ".join(text.replace("``", "").split())
