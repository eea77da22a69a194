"""``edgekit eval``: the command-line layer over ``edgekit.quality.evaluate``."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edgekit.core.errors import UsageError
from edgekit.cli.vocabulary import retired
from edgekit.quality.evaluate import run_eval, to_markdown


def add_parser(subparsers: Any) -> None:
    """Register ``eval`` on the top-level ``edgekit`` sub-parsers."""
    p = subparsers.add_parser(
        "eval", help="EM/F1 (SQuAD) or accuracy of a PyTorch model and its exported files, each in its own runtime",
        description="Answer every question of a SQuAD v1.1 file with each model (edgekit's QA pipeline: windows of "
                    "384 and the one QA geometry's stride, answers up to 15 tokens; an exported file: its record's "
                    "geometry) and score it by the official v1.1 rules. Exported "
                    "files run in their own runtime and are compared with the PyTorch model they came from "
                    "(same-answer rate). Sequence classification: accuracy on JSON lines.")
    p.add_argument("models", nargs="+", metavar="MODEL_OR_ARTIFACT",
                   help="PyTorch model folders, exported files (with their .json records) and/or "
                        "training checkpoints (OUT/checkpoints/step-N of distill task, finetune or shrink)")
    p.add_argument("--squad", help="SQuAD v1.1 JSON (.json or .json.xz) for question answering")
    p.add_argument("--jsonl", help="JSON lines {text, text_pair?, label} for sequence classification")
    p.add_argument("--n", type=int, default=None, help="evaluate the first N questions only (default: all)")
    p.add_argument("--model", help="the PyTorch source of the exported files (default: the one in their records)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for PyTorch and the artifacts' runtimes (default: the runtimes' own default)")
    p.add_argument("--output", dest="json_out", metavar="FILE",
                   help="also write the results (and every prediction) to this JSON file")
    retired(p, "--json", "--output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    from edgekit.cli import _add_verbose

    _add_verbose(p, log="edgekit.log beside the --output file; without --output the libraries' logs are dropped")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from edgekit.core.console import quiet_backends as _quiet_backends

    # Library chatter off the console (into the --output file's folder's edgekit.log when there is one).
    _quiet_backends(Path(args.json_out).parent if args.json_out else None)
    if args.n is not None and args.n < 1:
        raise UsageError("--n must be at least 1")
    results = run_eval(args.models, args.squad, args.jsonl, args.n, args.model, args.threads,
                       progress=not args.no_progress)
    print(to_markdown(results), end="")
    if args.json_out:
        from edgekit.core.record import atomic_write_text

        atomic_write_text(Path(args.json_out), json.dumps(
            {"results": [r.to_dict(predictions=True) for r in results]}, indent=1, ensure_ascii=False) + "\n")
    return 0
