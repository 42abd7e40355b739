"""What the scripts in ``apps/`` share: they reuse the parsers of ``dvsstream eval`` and
``dvsstream gui`` and fill some options in themselves (the dataset, the source). Those
options leave ``--help`` and are refused on the command line (exit status 2), so an app
never accepts an option only to ignore it.

Not a module of the library: the scripts import it from their own folder (Python puts
a script's folder first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Mapping, Optional, Sequence


def app_parser(parser: argparse.ArgumentParser, doc: str) -> argparse.ArgumentParser:
    """Name ``parser`` after the running script and describe it with the script's
    docstring (``doc``: first paragraph as the description, the rest kept as written).
    As ``dvsstream``'s, options must be spelled out (no abbreviations) and negative
    numbers and regions (``--roi -10,0,64,64``) are values."""
    from dvsstream.cli.args import NEGATIVE_VALUE

    parser.allow_abbrev = False
    parser._negative_number_matcher = NEGATIVE_VALUE
    parser.prog = os.path.basename(sys.argv[0]) or parser.prog
    parser.description = doc.strip()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def subcommand_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of subcommand ``name`` of ``parser`` (``dvsstream eval``'s, say).

    argparse keeps subparsers in its ``_SubParsersAction``; this reads it, so the apps
    take the options, their types, choices and help straight from the CLI."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]
    raise LookupError(f"{parser.prog} has no subcommand {name!r}")


def set_default(parser: argparse.ArgumentParser, dest: str, value: Any, help: Optional[str] = None) -> None:
    """Make option ``dest`` optional with the default ``value`` (and, given, new help)."""
    action = _action(parser, dest)
    action.required = False
    action.default = value
    if help is not None:
        action.help = help


def parse_app_args(
    parser: argparse.ArgumentParser,
    fixed: Mapping[str, Any],
    hint: str,
    argv: Optional[Sequence[str]] = None,
) -> argparse.Namespace:
    """Parse ``argv`` (default: the command line) with the options named by the keys of
    ``fixed`` (their ``dest``) filled in by the app with the values of ``fixed``: hidden
    from ``--help`` and the usage line, no longer required, and refused when given --
    ``parser.error`` then prints the usage and one line (which option, that the app
    sets it, ``hint``: what to do instead) and exits with status 2."""
    names = {}
    for dest in fixed:
        action = _action(parser, dest)
        action.help = argparse.SUPPRESS
        action.required = False
        action.default = argparse.SUPPRESS  # absent from the namespace unless given
        names[dest] = "/".join(action.option_strings)
    args = parser.parse_args(argv)
    given = [names[dest] for dest in fixed if hasattr(args, dest)]
    if given:
        parser.error(f"{given[0]} is set by this app; {hint}")
    for dest, value in fixed.items():
        setattr(args, dest, value)
    return args


def _action(parser: argparse.ArgumentParser, dest: str) -> argparse.Action:
    for action in parser._actions:
        if action.dest == dest and action.option_strings:
            return action
    raise LookupError(f"{parser.prog} has no option for {dest!r}")
