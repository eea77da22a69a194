"""Real question answering on the phone's CPU: the shared SQuAD model's app files answered by the
aarch64 runtimes under QEMU (edgekit.check.arm64's environment), against x86 and PyTorch.

    python benchmarks/arm64_qa.py --n 200 --cpus neoverse-n1 --work /tmp/arm64qa

Exports (on x86) the TFLite int8-weight file the Android app ships (256 tokens, Task Library
metadata) and the ONNX int8-dynamic file, answers N shared dev questions with each file three
ways — PyTorch, the x86 runtime, the aarch64 runtime per CPU model (every window of every question
in one emulated process) — and writes benchmarks/results/arm64.{md,json}: EM/F1 and the
same-answer rate of arm64 vs x86 and vs PyTorch. Emulated time says nothing about phone latency.
Needs ../shared and `make arm64-env`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from harness import shared_qa  # noqa: E402 - the benchmarks' one harness


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    shared_qa(p, 200)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--cpus", default="neoverse-n1")
    p.add_argument("--files", default="tflite:int8-weight,onnx:int8-dynamic")
    p.add_argument("--work", default="/tmp/edgekit-arm64-qa")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "arm64"))
    a = p.parse_args()
    import torch

    torch.set_num_threads(1)
    import edgekit
    from edgekit.check.arm64 import self_test
    from edgekit.core import registry
    from edgekit.core.geometry import QAGeometry
    from edgekit.core.record import ArtifactRecord
    from edgekit.model.modeling import load_model, load_tokenizer
    from edgekit.quality import squad
    from edgekit.quality.qa import QAConfig, QAPipeline, artifact_logits_fn, torch_logits_fn

    qs = squad.load_squad(a.dev, a.n)
    tok = load_tokenizer(a.model)
    model = load_model(a.model, "question-answering")
    geometry = QAGeometry.for_lengths([a.seq_len])
    cfg = QAConfig.from_geometry(geometry)
    work = Path(a.work)
    cpus = tuple(c for c in a.cpus.split(",") if c)

    def answer(fn) -> dict[str, str]:
        pipe = QAPipeline(tok, fn, cfg)
        out = {}
        for q in qs:
            best = pipe(q.question, q.context)
            out[q.id] = best[0].text if best else ""
        return out

    def score(preds: dict[str, str], ref: dict[str, str] | None) -> dict[str, float]:
        m = squad.evaluate(qs, preds)
        d = {"exact_match": round(m["exact_match"], 2), "f1": round(m["f1"], 2)}
        if ref is not None:
            d["same_answer"] = round(sum(preds[k] == ref[k] for k in ref) / len(ref), 4)
        return d

    t0 = time.perf_counter()
    torch_preds = answer(torch_logits_fn(model))
    rows = [{"file": "PyTorch fp32", "runtime": "torch (x86)", **score(torch_preds, None)}]
    print(rows[-1], file=sys.stderr)
    for spec in a.files.split(","):
        target, precision = spec.split(":")
        outdir = work / target
        existing = list(outdir.glob(f"*.{precision}.s{a.seq_len}{registry.get(target).suffix}"))
        if existing:
            path = existing[0]
        else:
            recs = edgekit.export(a.model, target=target, precision=precision, seq_len=a.seq_len, out=outdir)
            path = outdir / recs[0].artifact
        record = ArtifactRecord.load(path)
        conv = registry.get(target)
        x86 = conv.load(path, record, threads=1)
        x86_preds = answer(artifact_logits_fn(x86))
        rows.append({"file": path.name, "runtime": f"{target} (x86)", **score(x86_preds, torch_preds)})
        print(rows[-1], file=sys.stderr)
        mod = conv.arm64()
        self_test(mod.RUNTIME, cpus)
        # pass 1: the windows every question needs (recorded in call order); pass 2: replay the
        # aarch64 outputs in the same order (the pipeline is deterministic)
        calls: list[dict[str, np.ndarray]] = []

        def record_fn(ids, mask, types):
            feed = {"input_ids": ids.astype(np.int32), "attention_mask": mask.astype(np.int32)}
            for n in ("token_type_ids", "segment_ids"):
                if n in x86.input_names:
                    feed[n] = types.astype(np.int32)
            calls.append(feed)
            z = np.zeros(ids.shape, dtype=np.float32)
            return z, z

        answer(record_fn)
        for cpu in cpus:
            t1 = time.perf_counter()
            run = mod.run_file(path, record, calls, cpu=cpu, timeout=6 * 3600)
            outs = iter(run.outputs)

            def replay(ids, mask, types):
                o = next(outs)
                return np.asarray(o["start_logits"]), np.asarray(o["end_logits"])

            arm_preds = answer(replay)
            r = {"file": path.name, "runtime": f"{target} (arm64 {cpu}, QEMU {run.qemu_version})",
                 **score(arm_preds, torch_preds),
                 "same_answer_vs_x86": round(sum(arm_preds[k] == x86_preds[k] for k in x86_preds) / len(qs), 4),
                 "windows": len(calls), "emulated_seconds": round(time.perf_counter() - t1, 1)}
            rows.append(r)
            print(r, file=sys.stderr)
    load = os.getloadavg()[0]
    cmd = "python benchmarks/arm64_qa.py " + " ".join(sys.argv[1:])
    meta = {"command": cmd, "host": platform.machine(), "load_1min": round(load, 2), "questions": len(qs),
            "seq_len": a.seq_len, "doc_stride": geometry.doc_stride, "model": Path(a.model).name,
            "data": Path(a.dev).name, "date": time.strftime("%Y-%m-%d"), "seconds": round(time.perf_counter() - t0)}
    Path(a.out + ".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = [f"# Real QA on the phone's CPU (ARM64 under QEMU): {meta['model']}", "",
             f"`{cmd}` — {len(qs)} questions of {meta['data']}, windows of {a.seq_len} (stride "
             f"{geometry.doc_stride}), load {load:.1f}, {meta['date']}, {meta['seconds']} s.", "",
             "Same answer: identical answer text. Emulated seconds are not phone latency.", "",
             "| file | runtime | EM | F1 | same answer vs PyTorch | same answer vs x86 | windows | emulated s |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['file']} | {r['runtime']} | {r['exact_match']:.2f} | {r['f1']:.2f} | "
                     f"{r.get('same_answer', 1.0):.1%} | {r['same_answer_vs_x86']:.1%} |" if "same_answer_vs_x86" in r else
                     f"| {r['file']} | {r['runtime']} | {r['exact_match']:.2f} | {r['f1']:.2f} | "
                     f"{r.get('same_answer', 1.0):.1%} | — |")
        if "windows" in r:
            lines[-1] += f" {r['windows']} | {r['emulated_seconds']} |"
        else:
            lines[-1] += " — | — |"
    Path(a.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
