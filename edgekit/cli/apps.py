"""``edgekit bundle``: the command-line layer over ``edgekit.apps.bundle``."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgekit.core.geometry import DEFAULT_QA_LENGTH


def add_parser(subparsers: Any) -> None:
    """Register ``bundle`` on the top-level ``edgekit`` sub-parsers."""
    p = subparsers.add_parser(
        "bundle", help="write a demo app's assets: QA model, vocab.txt, golden.json, model card",
        description="Export a question-answering model for the Android (TFLite) or iOS (Core ML) demo app and "
                    "write vocab.txt, golden.json (tokenizer, decoder, model and QA cases the app replays on the "
                    "device) and a model card into --out.")
    from edgekit.apps.bundle import apps

    p.add_argument("--app", required=True, choices=sorted(apps()),
                   help="the demo app: " + ", ".join(f"{a} ({t})" for a, (t, _) in sorted(apps().items())))
    p.add_argument("--model", required=True, help="BERT/DistilBERT checkpoint folder (or Hugging Face id)")
    p.add_argument("--out", required=True, type=Path,
                   help="folder to write (android-demo/app/src/main/assets or ios-demo/EdgekitQADemo/Bundle)")
    p.add_argument("--precision", default="fp32", help="artifact precision (default fp32)")
    p.add_argument("--seq-len", type=int, default=DEFAULT_QA_LENGTH,
                   help=f"fixed sequence length of the file in tokens (default {DEFAULT_QA_LENGTH}, "
                        "export's question-answering default)")
    p.add_argument("--doc-stride", type=int, default=None,
                   help="overlap of context windows (default: the QA geometry's rule, seq-len/4 up to 128)")
    p.add_argument("--max-answer-len", type=int, default=None, help="longest answer in tokens (default 15)")
    p.add_argument("--artifact", type=Path, default=None,
                   help="bundle this already exported file (with its .json record) instead of exporting")
    p.add_argument("--questions", type=Path, default=None,
                   help="QA cases to run the shipped file on (edgekit-questions/1 JSON, e.g. "
                        "demo-golden/squad-dev-questions.json; default: four built-in examples)")
    p.add_argument("--no-validate", action="store_true",
                   help="skip the parity run after export (needs --allow-unvalidated)")
    p.add_argument("--allow-unvalidated", action="store_true",
                   help="ship a file whose record is validation-skipped; the model card records it")
    for flag, what in (("--max-abs", "largest |file - PyTorch| per logit"), ("--min-cosine", "cosine in [0, 1]"),
                       ("--min-psnr", "PSNR in dB"), ("--min-agreement", "answer agreement in [0, 1]")):
        p.add_argument(flag, type=float, default=None, help=f"tolerance for the export: {what}")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgekit.apps.bundle import BundleOptions, bundle
    from edgekit.core.console import console

    opts = BundleOptions(
        app=args.app, model=args.model, out=args.out, precision=args.precision, seq_len=args.seq_len,
        doc_stride=args.doc_stride, max_answer_len=args.max_answer_len, artifact=args.artifact,
        validate=not args.no_validate, allow_unvalidated=args.allow_unvalidated, max_abs=args.max_abs,
        min_cosine=args.min_cosine, min_psnr=args.min_psnr, min_agreement=args.min_agreement, questions=args.questions,
    )
    card = bundle(opts)
    console.print(f"[bold]bundle[/] {card['app']}: {card['artifact']} ({card['size_bytes'] / 1e6:.2f} MB, "
                  f"{card['status']}), vocab.txt, golden.json, model_card.json → {opts.out}")
    for w in card["warnings"]:
        console.print(f"[yellow]warning[/] {w}")
    return 0
