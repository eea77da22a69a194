"""TFLite sizes at DistilBERT-base scale: every precision, int8 as a share of fp32, with LiteRT parity.

The model is DistilBERT-base shaped (6 layers, hidden 768, FFN 3072, 30522-token uncased vocabulary)
with seeded random weights and the all-MiniLM-L6-v2 tokenizer (the same uncased WordPiece
vocabulary), so nothing is downloaded. Random weights make the sizes exact and the parity numbers
meaningful as numerics; accuracy needs a trained checkpoint. Every file goes through edgekit's
pipeline (export, validate, record); a row's seconds are that pipeline run.

    python benchmarks/tflite_base.py [--seq-len 128] [--out benchmarks/results/tflite_base.json]
    python benchmarks/tflite_base.py --size tiny --out /tmp/tflite_base.json     # a smoke run

Target (issue #4): int8 <= 27 % of fp32.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402

INT8_SHARE_TARGET = 0.27
TASK = "sequence-classification"
PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8-weight", "int8-static")


def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__, work=None, size=True, out=harness.RESULTS / "tflite_base.json",
                            out_help="the results json")
    parser.add_argument("--keep", dest="work", type=Path, help=argparse.SUPPRESS)  # --work's former name
    parser.add_argument("--seq-len", type=int, default=128)
    args = parser.parse_args(argv)

    rows, params = [], None
    with harness.workdir(args.work, "edgekit-tflite-base-") as work:
        ckpt = harness.build_checkpoint(work / f"distilbert-{args.size}-random", TASK, size=args.size,
                                        tokenizer="minilm")
        for precision in PRECISIONS:
            t0 = time.perf_counter()
            _, rec, model = harness.export(ckpt, "tflite", precision, work / "out", seq=args.seq_len, task=TASK,
                                           verbose=True)
            params = params or sum(p.numel() for p in model.parameters())
            parity = rec.parity.to_dict() if rec.parity else {}
            rows.append({
                "precision": precision, "status": rec.status.value, "reason": rec.reason,
                "size_bytes": rec.size_bytes, "seconds": round(time.perf_counter() - t0, 1),
                "max_abs": [o["max_abs"] for o in parity.get("outputs", [])],
                "cosine": [o["cosine"] for o in parity.get("outputs", [])],
                "agreement": parity.get("agreement"), "ops": rec.options.get("ops"),
                "int8_activation_ops": rec.options.get("int8_activation_ops"),
                "task_library": (rec.options.get("task_library") or {}).get("status"),
            })
            print(json.dumps({k: rows[-1][k] for k in ("precision", "status", "size_bytes", "max_abs", "agreement")}),
                  file=sys.stderr)
    fp32 = next(r["size_bytes"] for r in rows if r["precision"] == "fp32")
    for r in rows:
        r["share_of_fp32"] = round(r["size_bytes"] / fp32, 4) if r["size_bytes"] else None
    int8_ok = all(r["share_of_fp32"] is not None and r["share_of_fp32"] <= INT8_SHARE_TARGET
                  for r in rows if r["precision"].startswith("int8"))
    result = {"model": f"DistilBERT-{args.size} shape, random weights (seed 0)", "parameters": params, "task": TASK,
              "seq_len": args.seq_len, "int8_share_target": INT8_SHARE_TARGET, "int8_within_target": int8_ok,
              "rows": rows}
    harness.Results(args.out).write(result, harness.stamp(__file__, argv))
    print(json.dumps({r["precision"]: r["share_of_fp32"] for r in rows}))
    return 0 if int8_ok else 1


if __name__ == "__main__":
    sys.exit(main())
