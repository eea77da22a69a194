"""Core ML on a DistilBERT-base-sized model, checked on Linux by edgekit's MIL interpreter.

Builds a DistilBERT-base-shaped question-answering model (6 layers, hidden 768, 12 heads,
vocab 30522) with random weights (seed 0) and the uncased WordPiece tokenizer of the offline
all-MiniLM-L6-v2 package (same 30522-token vocabulary), exports it through edgekit's pipeline at
each precision, and records: package size (and ratio to fp32), export time, interpreter load and
run time at seq 128, and the parity numbers the record carries. Optionally (``--real``) it
also exports the real pretrained all-MiniLM-L6-v2 (feature extraction), whose outputs are not
random, so the tolerance verdicts there reflect trained weights.

    .venv/bin/python benchmarks/coreml_base.py            # ~10 min on 2 cores
    .venv/bin/python benchmarks/coreml_base.py --quick    # fp16 + int8 only
    .venv/bin/python benchmarks/coreml_base.py --quick --size tiny --out /tmp/coreml_base.json   # a smoke run

Writes ``benchmarks/results/coreml_base.json``.
"""
from __future__ import annotations

import json
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402

VARIANTS = [  # (precision, ane, deployment target)
    ("fp32", False, None), ("fp16", False, None), ("fp16", True, None), ("int8-weight", False, None),
    ("palettize8", False, None), ("palettize6", False, None), ("palettize4", False, None), ("int4-weight", False, "iOS18"),
]
QUICK = [("fp16", False, None), ("int8-weight", False, None)]


def run_variant(src: Path, task: str, out: Path, precision: str, ane: bool, target: str | None,
                seq: int) -> tuple[dict[str, Any], Any]:
    """Export one variant through the pipeline, then load and run it in the MIL interpreter: its row,
    and the model the pipeline loaded."""
    from edgekit.model.inputs import golden_feeds
    from edgekit.targets.coreml.mil import Interpreter

    flags = {k: v for k, v in {"ane": ane, "deployment_target": target}.items() if v}
    t0 = time.perf_counter()
    path, rec, model = harness.export(src, "coreml", precision, out, seq=seq, task=task, flags=flags, verbose=True)
    total = time.perf_counter() - t0
    row: dict[str, Any] = {
        "precision": precision, "ane": ane, "deployment_target": target or "iOS16", "status": rec.status.value,
        "reason": rec.reason, "size_bytes": rec.size_bytes, "export_seconds": rec.export_seconds,
        "export_and_validate_seconds": round(total, 1),
        "compression": (rec.options or {}).get("compression"),
    }
    if rec.parity:
        p = rec.parity.to_dict()
        row["parity"] = {
            "samples": p["samples"], "agreement": p["agreement"], "agreement_metric": p["agreement_metric"],
            "passed": p["passed"],
            "outputs": [{k: o[k] for k in ("name", "max_abs", "mean_abs", "cosine", "psnr")} for o in p["outputs"]],
        }
    if rec.size_bytes and path.exists():
        t1 = time.perf_counter()
        interp = Interpreter(path)
        row["interpreter_load_seconds"] = round(time.perf_counter() - t1, 2)
        feed = golden_feeds(model.config.vocab_size, model.task, seq, model.input_names, n_random=1)[0]
        times = []
        for _ in range(2):
            t2 = time.perf_counter()
            interp.run(feed)
            times.append(time.perf_counter() - t2)
        row["interpreter_run_seconds"] = round(min(times), 2)
        row["ops"] = interp.op_counts
        shutil.rmtree(path, ignore_errors=True)  # keep the disk footprint small; the numbers are recorded
    print(json.dumps({k: v for k, v in row.items() if k != "ops"}, default=str), flush=True)
    return row, model


def main(argv: list[str] | None = None) -> int:
    ap = harness.parser(__doc__, full_doc=True, size=True, out=harness.RESULTS / "coreml_base.json",
                        out_help="the results json")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--quick", action="store_true", help="fp16 and int8 only")
    ap.add_argument("--real", action="store_true", help="also export the real all-MiniLM-L6-v2 (feature extraction)")
    ap.add_argument("--real-only", action="store_true",
                    help="run only the real-model part, keeping the base-sized results already in --out")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(2)
    from edgekit import __version__
    from edgekit.model.modeling import embedded_model_path

    results = harness.Results(args.out, default=str)
    stamp = harness.stamp(__file__, argv)
    d = harness.shape(args.size)
    result: dict[str, Any] = {
        "model": f"DistilBERT-{args.size}-sized QA ({d['n_layers']} layers, hidden {d['dim']}, {d['n_heads']} heads, "
                 f"vocab {d['vocab_size']}), random weights seed 0",
        "seq_len": args.seq, "host": platform.platform(), "python": platform.python_version(), "edgekit": __version__,
        "variants": [],
    }
    if args.real_only and results.json.is_file():
        result = results.load()
    with harness.workdir(None, "edgekit-coreml-base-") as work:
        if args.real_only:
            args.real = True
        else:
            ckpt = harness.build_checkpoint(work / f"distilbert-{args.size}-random", "question-answering",
                                            size=args.size, tokenizer="minilm")
            for precision, ane, target in (QUICK if args.quick else VARIANTS):
                row, model = run_variant(ckpt, "question-answering", work / "out", precision, ane, target, args.seq)
                result["variants"].append(row)
                result.setdefault("parameters", sum(p.numel() for p in model.parameters()))
                results.write(result, stamp)
        sizes = {(v["precision"], v["ane"]): v["size_bytes"] for v in result["variants"] if v.get("size_bytes")}
        fp32 = sizes.get(("fp32", False))
        if fp32:
            result["size_ratio_vs_fp32"] = {f"{p}{'-ane' if a else ''}": round(s / fp32, 4) for (p, a), s in sizes.items()}
        if args.real:
            real = embedded_model_path("benchmarks/coreml_base.py --real")
            result["real_model"] = {"model": "sentence-transformers/all-MiniLM-L6-v2 (offline copy)", "variants": [
                run_variant(real, "feature-extraction", work / "out-real", p, a, tg, args.seq)[0]
                for p, a, tg in (("fp16", False, None), ("fp16", True, None), ("int8-weight", False, None),
                                 ("palettize6", False, None), ("palettize4", False, None),
                                 ("int4-weight", False, "iOS18"))
            ]}
    results.write(result, stamp)
    print(f"wrote {results.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
