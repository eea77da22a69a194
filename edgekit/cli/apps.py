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
    from edgekit.apps.golden_arch import ARCHES

    g = p.add_argument_group("where golden.json's expected outputs are computed (the phone is arm64; "
                             "`make arm64-env` sets up the emulator)")
    g.add_argument("--golden-arch", default="auto", choices=ARCHES,
                   help="architecture the shipped file's golden outputs are computed on: arm64 (its aarch64 runtime "
                        "under QEMU, checked against x86_64), x86_64, or auto (default: arm64 when the emulation "
                        "environment and the file's aarch64 runtime are there, else x86_64 with the reason)")
    g.add_argument("--golden-cpu", default=None, metavar="CPU",
                   help="QEMU CPU model for arm64 golden outputs (default neoverse-n1, a phone core; one of the "
                        "models `make arm64-env` verified, e.g. max); naming it requires arm64")
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
        golden_arch=args.golden_arch, golden_cpu=args.golden_cpu,
    )
    card = bundle(opts)
    console.print(f"[bold]bundle[/] {card['app']}: {card['artifact']} ({card['size_bytes'] / 1e6:.2f} MB, "
                  f"{card['status']}), vocab.txt, golden.json, model_card.json → {opts.out}")
    where = card["golden_computed_on"]
    console.print("golden.json: expected outputs computed on " + (  # on x86, why was said once already
        f"arm64 ({where['cpu']}, QEMU {where['qemu']}, {where['runtime']}; x86_64 agrees)" if where["arch"] == "arm64"
        else f"x86_64 ({where['runtime']})"), markup=False)
    for w in card["warnings"]:
        console.print(f"[yellow]warning[/] {w}")
    return 0
