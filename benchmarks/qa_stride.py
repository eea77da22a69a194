"""Which doc stride should every QA consumer use? SQuAD F1 of the PyTorch model at each stride.

The one QA geometry (edgekit.core.geometry) has one stride rule; this measures the candidates on
the shared dev questions (../shared: the SQuAD-fine-tuned MiniLM and the even dev articles):

    python benchmarks/qa_stride.py --n 1000 --strides 96,128 --length 384

Results: benchmarks/results/qa_stride.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from harness import shared_qa  # noqa: E402 - the benchmarks' one harness


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    shared_qa(p, 1000)
    p.add_argument("--length", type=int, default=384)
    p.add_argument("--strides", default="96,128")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "qa_stride"))
    a = p.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    from edgekit.model.modeling import load_model, load_tokenizer
    from edgekit.quality import squad
    from edgekit.quality.qa import QAConfig, QAPipeline, torch_logits_fn

    model = load_model(a.model, "question-answering")
    tok = load_tokenizer(a.model)
    qs = squad.load_squad(a.dev, a.n)
    rows = []
    preds_by = {}
    for stride in [int(s) for s in a.strides.split(",")]:
        pipe = QAPipeline(tok, torch_logits_fn(model), QAConfig(max_seq_len=a.length, doc_stride=stride, pad_to=a.length))
        t0 = time.perf_counter()
        preds = {}
        windows = 0
        for q in qs:
            _, _, w = pipe.encode(q.question, q.context)
            windows += len(w)
            best = pipe(q.question, q.context)
            preds[q.id] = best[0].text if best else ""
        secs = time.perf_counter() - t0
        m = squad.evaluate(qs, preds)
        preds_by[stride] = preds
        rows.append({"stride": stride, "length": a.length, "n": len(qs), "exact_match": round(m["exact_match"], 3),
                     "f1": round(m["f1"], 3), "windows": windows, "seconds": round(secs, 1)})
        print(rows[-1], file=sys.stderr)
    base = rows[0]["stride"]
    for r in rows:
        r["same_answer_vs_first"] = round(sum(preds_by[r["stride"]][k] == preds_by[base][k] for k in preds_by[base])
                                          / len(qs), 4)
    load = os.getloadavg()[0]
    cmd = "python benchmarks/qa_stride.py " + " ".join(sys.argv[1:])
    meta = {"command": cmd, "host": platform.machine(), "threads": a.threads, "load_1min": round(load, 2),
            "model": Path(a.model).name, "data": Path(a.dev).name, "date": time.strftime("%Y-%m-%d")}
    Path(a.out + ".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = [f"# QA doc stride at {a.length} tokens: SQuAD v1.1 F1 of the PyTorch model ({meta['model']})", "",
             f"`{cmd}` — {len(qs)} questions of {meta['data']}, {a.threads} thread(s), load {load:.1f}, {meta['date']}.", "",
             "| stride | windows | EM | F1 | same answer as stride " + str(base) + " | seconds |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['stride']} | {r['windows']} | {r['exact_match']:.2f} | {r['f1']:.2f} | "
                     f"{r['same_answer_vs_first']:.1%} | {r['seconds']} |")
    Path(a.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
