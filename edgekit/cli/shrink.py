"""``edgekit shrink``: the command-line layer over ``edgekit.shrink(...)`` (flags in, the report's
chosen file out; the options are mapped and checked there, not here)."""
from __future__ import annotations

import argparse
from typing import Any

from edgekit.core.tasks import ALIASES


def add_parser(subparsers: Any) -> None:
    """Register ``shrink`` on the top-level ``edgekit`` sub-parsers."""
    from edgekit.apps.bundle import apps
    from edgekit.cli.distill import recipe_help
    from edgekit.shrinker.run import DEFAULT_GENERAL_STEPS, DEFAULT_HELDOUT

    p = subparsers.add_parser(
        "shrink", help="from a fine-tuned model to the file to ship: distil, export, gate, measure, choose",
        description="Distil a shallower student from a fine-tuned question-answering or classification teacher "
                    "(layer map and checkpoint chosen on a held-out slice of --data, never on --eval-data), export "
                    "teacher and student to the target at every precision (length buckets where the target takes "
                    "them), validate and gate each file, time each on real --eval-data questions in its own "
                    "process, and write OUT/report.md|json|html with every candidate and the chosen file: the "
                    "fastest whose 95% interval of the F1 drop lies within --max-f1-drop of the teacher.")
    p.add_argument("--model", required=True, help="the fine-tuned teacher: a BERT folder (question answering or "
                                                   "sequence classification)")
    p.add_argument("--task", required=True, choices=sorted(set(ALIASES) | {"question-answering",
                                                                         "sequence-classification"}),
                   metavar="TASK", help="the model's task: qa or seq-cls")
    p.add_argument("--data", required=True,
                   help='training data: SQuAD v1.1 JSON (.json/.json.xz) or JSON lines (qa {"question", "context", '
                        '"answers"}; seq-cls {"text", "text_pair"?, "label"}); a held-out slice of it chooses the '
                        "layer map and the checkpoint")
    p.add_argument("--eval-data", required=True,
                   help="DEV data scoring the exported files only: SQuAD v1.1 JSON for question answering, or "
                        "JSON lines {text, text_pair?, label}")
    p.add_argument("--target", required=True, help="the target to ship on, one name (`edgekit targets` lists them)")
    p.add_argument("--out", required=True, help="output folder: the student, the files, the report, the state")
    p.add_argument("--layers", default=None,
                   help="teacher layers for the student: a count (3: the map is chosen by measurement) or the "
                        "layers (0,2,4) (default: half the teacher's, measured)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--budget-minutes", type=float, default=None,
                        help="wall-clock budget of the training: the warm-up/decay schedule is fitted to it")
    budget.add_argument("--steps", type=int, default=None, help="optimizer steps of the training (default: one epoch)")
    p.add_argument("--general-data", default=None, metavar="TEXT",
                   help="unlabelled text, one sentence per line (.xz/.gz/.bz2 fine), e.g. Wikipedia: the student first "
                        "learns the teacher's hidden states on it (general distillation, `edgekit distill general`), "
                        "then its task (default: no general phase)")
    p.add_argument("--general-steps", type=int, default=None, metavar="N",
                   help=f"steps of the general distillation (default {DEFAULT_GENERAL_STEPS}, with --general-data)")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate of the student's training and of the layer-map probes (default: "
                        f"{recipe_help('lr', finetune=False)})")
    p.add_argument("--max-f1-drop", type=float, default=2.0,
                   help="largest F1 (accuracy) drop below the teacher the chosen file may have: its whole 95%% "
                        "interval must lie within it (default 2.0)")
    p.add_argument("--precision", default="all",
                   help="precisions, comma-separated (default all: every precision the target has)")
    p.add_argument("--seq-len", default=None, metavar="N,N,...",
                   help="length buckets in tokens of the candidates (question answering, ending at 384: the "
                        "baseline's windows), e.g. 64,128,192,256,320,384 (default 128,256,384); finer buckets pad "
                        "less. "
                        "Changed on --resume auto, the files are exported and timed again from the kept student")
    p.add_argument("--bundle", default=None, choices=sorted(apps()),
                   help="bundle the chosen file for this demo app (" + ", ".join(
                       f"{a}: {t}" for a, (t, _) in sorted(apps().items())) + ")")
    p.add_argument("--resume", default=None, choices=["auto"],
                   help="auto: continue the run in --out (training from its newest checkpoint)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for the runtimes and PyTorch (default: the cores not busy with other work)")
    p.add_argument("--passes", type=int, default=3, help="timed passes per file, each in its own process (default 3)")
    p.add_argument("--eval-n", type=int, default=None, help="the first N DEV questions only (default: all)")
    p.add_argument("--eval-max", type=int, default=None, metavar="N",
                   help="with --eval-n: a file left undecided that would be faster than the chosen one is scored on "
                        "twice the questions, round by round, up to N (default: all of --eval-data)")
    p.add_argument("--heldout-n", type=int, default=DEFAULT_HELDOUT, metavar="N",
                   help=f"rows of --data held out to choose the layer map and the checkpoint (default "
                        f"{DEFAULT_HELDOUT}, at most a fifth of --data); a resumed run needs the count it started with")
    p.add_argument("--timed-n", type=int, default=100,
                   help="DEV questions timed per pass and file (default 100; all are answered once)")
    p.add_argument("--no-progress", action="store_true", help="no training progress bar on stderr")
    from edgekit.cli import _add_arch_args

    _add_arch_args(p)  # --arch arm64: every candidate's parity also on the phone's CPU; a failing file is never chosen
    p.set_defaults(func=run, recorded_flags=_recorded_flags(p))


def _recorded_flags(parser: argparse.ArgumentParser) -> tuple[tuple[str, str, object, bool], ...]:
    """(long flag, dest, default, takes no value) of every option of ``parser``: what ``_argv`` compares, read
    from the parser itself so that a flag or a default changed there is recorded as it is."""
    return tuple((max(a.option_strings, key=len), a.dest, a.default, a.nargs == 0)
                 for a in parser._actions if a.option_strings and a.dest != "help")


def _argv(args: argparse.Namespace) -> list[str]:
    """The command as given (every option that differs from its default), for the report."""
    argv = ["shrink"]
    for flag, dest, default, switch in args.recorded_flags:
        value = getattr(args, dest)
        if value is not None and value != default:
            argv += [flag] if switch else [flag, str(value)]
    return argv


def run(args: argparse.Namespace) -> int:
    from edgekit import api
    from edgekit.cli import _arm64
    from edgekit.core.console import console

    # A thin layer: the flags go to `edgekit.shrink` under the same names (one mapping to ShrinkOptions).
    rep = api.shrink(args.model, args.task, args.data, args.eval_data, args.target, args.out, layers=args.layers,
                     budget_minutes=args.budget_minutes, steps=args.steps, max_f1_drop=args.max_f1_drop,
                     precision=args.precision, seq_len=args.seq_len, bundle=args.bundle, resume=args.resume,
                     threads=args.threads, passes=args.passes, timed_n=args.timed_n, eval_n=args.eval_n,
                     eval_max=args.eval_max, heldout_n=args.heldout_n, progress=not args.no_progress,
                     training={} if args.lr is None else {"lr": args.lr}, arm64=_arm64(args),
                     general_data=args.general_data, general_steps=args.general_steps,
                     command=_command_line(_argv(args)))
    chosen = rep.chosen_candidate
    if chosen is None:
        console.print(f"no file chosen: {rep.reason}", markup=False, highlight=False)
        print(f"{rep.out}/report.md")
        return 1
    console.print(f"chosen: {chosen.artifact} — {rep.reason}", markup=False, highlight=False)
    print(f"{rep.out}/report.md")
    return 0


def _command_line(argv: list[str]) -> str:
    """The command as one shell line (quoted where needed), as the report shows it."""
    import shlex

    return "edgekit " + shlex.join(argv)
