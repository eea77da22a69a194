"""One vocabulary of flags (issue 28): every subcommand against the tables in DESIGN.md.

The tables are read from DESIGN.md ("One vocabulary of flags"), so the document and the parsers
cannot drift: a flag added to another command, a changed default or a retired spelling shown in a
``--help`` fails here until the table says so.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from edgekit.cli import build_parser
from edgekit.core.tasks import ALIASES, Task
from edgekit.cli.vocabulary import MIXED_PRECISION, is_retired

DESIGN = Path(__file__).resolve().parents[1] / "DESIGN.md"
SECTION = "## One vocabulary of flags"


# ---- the parsers --------------------------------------------------------------------------------

def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, path + (name,))


PARSERS = dict(_walk(build_parser()))


def _visible(action: argparse.Action) -> bool:
    return action.help != argparse.SUPPRESS and not isinstance(action, (argparse._HelpAction,
                                                                        argparse._SubParsersAction))


def _option(command: str, flag: str) -> argparse.Action | None:
    return PARSERS[command]._option_string_actions.get(flag)


def _has(command: str, flag: str) -> bool:
    a = _option(command, flag)
    return a is not None and _visible(a) and not is_retired(a)


# ---- the tables in DESIGN.md --------------------------------------------------------------------

def _tables() -> list[list[list[str]]]:
    text = DESIGN.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + 1)
    body = text[start:end if end != -1 else None]
    tables, current = [], []
    for line in body.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not set("".join(cells)) <= set("-: "):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    assert len(tables) == 2, "DESIGN.md's vocabulary section holds the flag table and the retired table"
    return tables


def _ticked(cell: str) -> str:
    m = re.search(r"`([^`]+)`", cell)
    assert m, cell
    return m.group(1)


ITEM = re.compile(r"^(?:`(?P<value>[^`]*)`|(?P<word>none|required))\s*\((?P<commands>[^)]*)\)$")


def _defaults(cell: str) -> dict[str, str]:
    """``none (export); `128` (demo)`` -> {command: default text}; ``none``/``required`` kept as words."""
    out: dict[str, str] = {}
    for item in cell.split(";"):
        m = ITEM.match(item.strip())
        assert m, f"cannot read the default item {item!r}"
        for command in m.group("commands").split(","):
            out[command.strip()] = m.group("value") if m.group("value") is not None else m.group("word")
    return out


FLAGS = {_ticked(row[0]): {"says": row[2], "defaults": _defaults(row[3])} for row in _tables()[0][1:]}
RETIRED = {_ticked(row[0]): {"new": _ticked(row[1]), "in": {c.strip() for c in row[2].split(",")}}
           for row in _tables()[1][1:]}


def test_the_tables_name_real_commands():
    assert {"--seq-len", "--out", "--output", "--warmup", "--warmup-fraction", "--mixed-precision",
            "--task", "--golden-arch", "--golden-cpu"} <= set(FLAGS)
    for flag, row in FLAGS.items():
        assert set(row["defaults"]) <= set(PARSERS), (flag, set(row["defaults"]) - set(PARSERS))
    for old, row in RETIRED.items():
        assert row["in"] <= set(PARSERS) and row["new"] in FLAGS, old


# ---- the checks --------------------------------------------------------------------------------

@pytest.mark.parametrize("flag", sorted(FLAGS))
def test_each_flag_means_one_thing_with_the_default_the_table_gives(flag):
    row = FLAGS[flag]
    having = {c for c in PARSERS if _has(c, flag)}
    assert having == set(row["defaults"]), (
        f"{flag}: commands with it {sorted(having)} but DESIGN.md names {sorted(row['defaults'])}")
    for command, default in row["defaults"].items():
        action = _option(command, flag)
        assert row["says"].lower() in action.help.lower(), f"{command} {flag}: help {action.help!r} lacks {row['says']!r}"
        if default == "required":
            assert action.required, f"{command} {flag} should be required"
        elif default == "none":
            assert not action.required and action.default is None, f"{command} {flag}: default {action.default!r}"
        else:
            assert not action.required and str(action.default) == default, (
                f"{command} {flag}: default {action.default!r}, DESIGN.md says {default!r}")


def test_every_visible_option_has_a_help_text():
    missing = [f"{c or 'edgekit'} {a.option_strings or a.dest}" for c, p in PARSERS.items() for a in p._actions
               if _visible(a) and not (a.help or "").strip()]
    assert not missing, missing


def _help_texts():
    for command, parser in PARSERS.items():
        yield command, "description", parser.description or ""
        for a in parser._actions:
            if _visible(a):
                yield command, "/".join(a.option_strings) or a.dest, a.help or ""


def test_no_help_shows_a_retired_spelling_or_markup(monkeypatch):
    monkeypatch.setenv("COLUMNS", "10000")  # no wrapping: a spelling cannot hide across a line break
    for command, parser in PARSERS.items():
        text = parser.format_help()
        for old in RETIRED:
            current_here = old in FLAGS and command in FLAGS[old]["defaults"]
            if not current_here:
                assert not re.search(rf"(?<![\w-]){re.escape(old)}(?![\w-])", text), f"{command or 'edgekit'} shows {old}"
    for command, where, text in _help_texts():
        assert "``" not in text and not re.search(r":[a-z]+:`", text), f"{command} {where}: {text!r}"


@pytest.mark.parametrize("old", sorted(RETIRED))
def test_retired_spellings_are_hidden_aliases_with_a_note(old, capsys):
    row = RETIRED[old]
    for command in PARSERS:
        action = _option(command, old)
        if command not in row["in"]:
            assert action is None or (old in FLAGS and command in FLAGS[old]["defaults"]), f"{command} has {old}"
            continue
        assert action is not None and is_retired(action) and action.help == argparse.SUPPRESS, (command, old)
        new = _option(command, row["new"])
        assert new is not None and new.dest == action.dest, (command, old)
        value = {"--bf16": "yes", "--json": "r.json", "--seq-lens": "16,24"}.get(
            old, "0.2" if action.type is float else "32")
        base = command.split() + _required(PARSERS[command])
        capsys.readouterr()
        got_old = vars(build_parser().parse_args(base + [old, value]))[action.dest]
        note = capsys.readouterr().err.strip().splitlines()
        assert len(note) == 1 and old in note[0] and row["new"] in note[0] and "deprecated" in note[0], note
        got_new = vars(build_parser().parse_args(base + [row["new"], str(got_old)]))[action.dest]
        assert got_old == got_new and capsys.readouterr().err == ""
    if old == "--bf16":
        assert got_old == "bf16"  # yes -> bf16


def _required(parser: argparse.ArgumentParser) -> list[str]:
    """Dummy values for the command's required options and positionals."""
    argv: list[str] = []
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction) or not (a.required or not a.option_strings):
            continue
        if isinstance(a, (argparse._HelpAction,)):
            continue
        value = sorted(a.choices)[0] if a.choices else "x"
        argv += ([a.option_strings[0]] if a.option_strings else []) + [value]
    return argv


def test_task_aliases_are_one_table_accepted_everywhere():
    assert Task.parse("qa") is Task.QUESTION_ANSWERING and Task.parse("seq-cls") is Task.SEQUENCE_CLASSIFICATION
    assert all(Task.parse(alias).value == name for alias, name in ALIASES.items())
    from edgekit.cli import _task

    assert _task("qa", "no-such-model") == "question-answering"  # export --task qa, bench --task qa
    for command, parser in PARSERS.items():
        action = parser._option_string_actions.get("--task")
        if action is not None and action.choices is not None:
            assert "qa" in action.choices and "seq-cls" in action.choices, command


def test_mixed_precision_choices_are_one_list():
    for command in FLAGS["--mixed-precision"]["defaults"]:
        choices = list(_option(command, "--mixed-precision").choices)
        assert {"auto", "no"} <= set(choices) <= set(MIXED_PRECISION), (command, choices)
        assert choices == [c for c in MIXED_PRECISION if c in choices], (command, choices)  # one order


def test_bundle_qa_length_is_exports():
    from edgekit.core import registry
    from edgekit.core.config import SeqLen
    from edgekit.core.geometry import DEFAULT_QA_LENGTH

    assert _option("bundle", "--seq-len").default == DEFAULT_QA_LENGTH
    for name, conv in registry.converters().items():  # Core ML QA: 128,256,384 in one package, longest 384
        assert SeqLen.parse(conv.default_seq_len(Task.QUESTION_ANSWERING)).max == DEFAULT_QA_LENGTH, name


@pytest.mark.parametrize("command", ["validate", "eval"])
def test_commands_without_out_name_their_own_log(command):
    text = _option(command, "--verbose").help
    assert "OUT/" not in text and "edgekit.log" in text, text
