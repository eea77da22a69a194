"""Per-question latency on real SQuAD questions, fixed 384 vs length buckets; writes benchmarks/results/buckets.{md,json}.

    .venv/bin/python benchmarks/buckets.py                       # 1,000 questions, TFLite and ONNX, fp32
    .venv/bin/python benchmarks/buckets.py --questions 50 --targets onnx --out /tmp/b   # a smoke run

The first ``--questions`` questions of ``../shared/data/squad-v1.1/dev-even-articles.json.xz``
(file order) go through edgekit's QA pipeline (windows of at most 384 tokens, stride 128, answers
up to 15 tokens) on one exported file per target made with ``--seq-len 128,256,384`` from the real
QA model ``../shared/models/minilm-l6-squad``:

* fixed: every window padded to 384 (what a single-length QA export runs);
* bucketed: every window padded to the smallest of 128/256/384 that fits (``QAConfig.buckets``).

Both run the same file in the same process, question by question, in alternating order, so a load
spike on the shared machine hits both alike; a question's latency is the whole pipeline call
(tokenise, window, run, decode). Reported: mean and p90 latency per question, the speed-up of the
means, the fraction of questions whose top answer is identical, and EM/F1 of both with the official
SQuAD v1.1 rules (implemented below: edgekit.squad had not landed when this was written).
"""
from __future__ import annotations

import argparse
import collections
import json
import lzma
import os
import re
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
BUCKETS = (128, 256, 384)


def shared_dir() -> Path:
    """``../shared`` beside the checkout (EDGEKIT_SHARED overrides)."""
    env = os.environ.get("EDGEKIT_SHARED")
    return Path(env) if env else ROOT.parent / "shared"


def read_squad(path: Path, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` questions in file order: id, question, context, gold answer texts."""
    with lzma.open(path, "rt", encoding="utf-8") as f:
        data = json.load(f)["data"]
    out = []
    for article in data:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                out.append({"id": qa["id"], "question": qa["question"], "context": para["context"],
                            "answers": [a["text"] for a in qa["answers"]]})
                if len(out) == limit:
                    return out
    return out


# ---- the official SQuAD v1.1 metric (evaluate-v1.1.py) ----------------------------------------------

def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(prediction: str, ground_truth: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(ground_truth).split()
    common = collections.Counter(pred) & collections.Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, ground_truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def squad_scores(predictions: dict[str, str], questions: list[dict[str, Any]]) -> dict[str, float]:
    """EM and F1 in percent, each the maximum over a question's gold answers, averaged over questions."""
    em = f1 = 0.0
    for q in questions:
        pred = predictions[q["id"]]
        em += max(exact_match(pred, g) for g in q["answers"])
        f1 += max(f1_score(pred, g) for g in q["answers"])
    return {"exact_match": 100 * em / len(questions), "f1": 100 * f1 / len(questions)}


# ---- the run ---------------------------------------------------------------------------------------

def load_average() -> list[float]:
    from edgekit.bench import load_average as read

    return read() or []


def export(model_dir: Path, target: str, precision: str, out: Path) -> tuple[Path, Any]:
    """One validated multi-length file (reused when it is already in ``out``)."""
    from edgekit import registry
    from edgekit.config import ExportOptions, SeqLen
    from edgekit.export import artifact_name, export_model
    from edgekit.modeling import load_model, load_tokenizer
    from edgekit.precision import Precision
    from edgekit.record import ArtifactRecord, Status
    from edgekit.tasks import Task

    model = load_model(model_dir, Task.QUESTION_ANSWERING)
    opts = ExportOptions(target=target, task=model.task, precision=Precision.parse(precision),
                         seq_len=SeqLen.parse(",".join(map(str, BUCKETS))),
                         flags={"metadata": False} if target == "tflite" else {})
    path = out / artifact_name(model, opts, registry.get(target))
    if path.exists() and ArtifactRecord.sidecar_path(path).exists():
        record = ArtifactRecord.load(path)
    else:
        record = export_model(model, opts, out, tokenizer=load_tokenizer(model_dir), verbose=False)
    if record.status != Status.VALIDATED:
        raise SystemExit(f"{target} {precision}: {record.status.value}: {record.reason}")
    return path, record


def run_target(target: str, path: Path, record: Any, tokenizer: Any, questions: list[dict[str, Any]],
               threads: int) -> dict[str, Any]:
    from edgekit import registry
    import torch
    from edgekit.qa import QAConfig, QAPipeline, artifact_logits_fn

    torch.set_num_threads(threads)
    runner = registry.get(target).load(path, record, threads=threads)
    fn = artifact_logits_fn(runner)
    pipes = {
        "fixed": QAPipeline(tokenizer, fn, QAConfig(max_seq_len=max(BUCKETS), doc_stride=128, pad_to=max(BUCKETS))),
        "bucketed": QAPipeline(tokenizer, fn, QAConfig(max_seq_len=max(BUCKETS), doc_stride=128, buckets=BUCKETS)),
    }
    for pipe in pipes.values():  # warm up every length once
        for q in questions[:3]:
            pipe(q["question"], q["context"])
    times: dict[str, list[float]] = {k: [] for k in pipes}
    preds: dict[str, dict[str, str]] = {k: {} for k in pipes}
    lengths: collections.Counter[int] = collections.Counter()
    load_start = load_average()
    for i, q in enumerate(questions):
        order = list(pipes) if i % 2 == 0 else list(reversed(pipes))
        for k in order:
            t0 = time.perf_counter()
            answers = pipes[k](q["question"], q["context"])
            times[k].append((time.perf_counter() - t0) * 1000)
            preds[k][q["id"]] = answers[0].text if answers else ""
        for w in pipes["bucketed"].encode(q["question"], q["context"])[2]:
            lengths[len(w.input_ids)] += 1
        if (i + 1) % 100 == 0:
            print(f"[{target}] {i + 1}/{len(questions)} questions, load {load_average()[0]:.1f}", file=sys.stderr,
                  flush=True)
    same = sum(preds["fixed"][q["id"]] == preds["bucketed"][q["id"]] for q in questions)
    stats = {k: {"mean_ms": float(np.mean(v)), "p50_ms": float(np.percentile(v, 50)),
                 "p90_ms": float(np.percentile(v, 90)), **squad_scores(preds[k], questions)}
             for k, v in times.items()}
    return {
        "target": target, "artifact": path.name, "precision": str(record.precision), "seq_len": str(record.seq_len),
        "size_bytes": record.size_bytes, "fixed": stats["fixed"], "bucketed": stats["bucketed"],
        "speedup_mean": stats["fixed"]["mean_ms"] / stats["bucketed"]["mean_ms"],
        "speedup_p90": stats["fixed"]["p90_ms"] / stats["bucketed"]["p90_ms"],
        "identical_answers": same / len(questions),
        "windows_by_length": {str(k): lengths[k] for k in sorted(lengths)},
        "load_average_start": load_start, "load_average_end": load_average(),
        "differing": [{"id": q["id"], "fixed": preds["fixed"][q["id"]], "bucketed": preds["bucketed"][q["id"]]}
                      for q in questions if preds["fixed"][q["id"]] != preds["bucketed"][q["id"]]][:20],
    }


def render(payload: dict[str, Any]) -> str:
    s = payload["settings"]
    lines = ["# Length buckets on real SQuAD questions", "",
             f"First {s['questions']} questions of `dev-even-articles.json.xz` (SQuAD v1.1 dev, even articles, file "
             f"order), model `minilm-l6-squad` (all-MiniLM-L6-v2 fine-tuned on SQuAD, BERT, 6 layers, hidden 384), "
             f"{s['precision']}, {s['threads']} threads. One file per target exported with `--seq-len "
             f"{','.join(map(str, BUCKETS))}`; fixed = every window padded to {max(BUCKETS)}, bucketed = padded to the "
             "smallest bucket that fits. Latency per question = the whole QA pipeline call (tokenise, window, run, "
             "decode), both variants on the same file, alternating order question by question.", "",
             f"Machine: {payload['host']['cpu']}, {payload['host']['cores']} cores, shared with other jobs.", ""]
    high = max((r["load_average_start"][0] for r in payload["results"] if r["load_average_start"]), default=0)
    if high > payload["host"]["cores"]:
        lines += [f"**The load was high** (1-minute load average up to {high:.1f} on {payload['host']['cores']} "
                  "cores): absolute milliseconds are inflated; the speed-up compares two variants timed "
                  "interleaved in one run and is the meaningful number.", ""]
    lines += ["| target | fixed 384 mean / p90 ms | bucketed mean / p90 ms | speed-up (mean / p90) | identical answers | "
              "EM fixed / bucketed | F1 fixed / bucketed | load avg start → end |",
              "|---|---|---|---|---:|---|---|---|"]
    for r in payload["results"]:
        f, b = r["fixed"], r["bucketed"]
        la = f"{r['load_average_start'][0]:.1f} → {r['load_average_end'][0]:.1f}" if r["load_average_start"] else "–"
        lines.append(f"| {r['target']} | {f['mean_ms']:.1f} / {f['p90_ms']:.1f} | {b['mean_ms']:.1f} / {b['p90_ms']:.1f} | "
                     f"{r['speedup_mean']:.2f}x / {r['speedup_p90']:.2f}x | {r['identical_answers']:.1%} | "
                     f"{f['exact_match']:.1f} / {b['exact_match']:.1f} | {f['f1']:.1f} / {b['f1']:.1f} | {la} |")
    r0 = payload["results"][0]
    lines += ["", "Windows by padded length (bucketed): "
              + ", ".join(f"{k}: {v}" for k, v in r0["windows_by_length"].items()) + ".", "",
              "## Against the targets of issue 16", ""]
    for r in payload["results"]:
        ok_speed = r["speedup_mean"] >= 1.5
        ok_same = r["identical_answers"] >= 0.999
        d_em = abs(r["fixed"]["exact_match"] - r["bucketed"]["exact_match"])
        d_f1 = abs(r["fixed"]["f1"] - r["bucketed"]["f1"])
        lines.append(f"- {r['target']}: mean speed-up {r['speedup_mean']:.2f}x (goal >= 1.5x: "
                     f"{'meets' if ok_speed else 'misses'}); identical answers {r['identical_answers']:.1%} "
                     f"(goal >= 99.9%: {'meets' if ok_same else 'misses'}); EM/F1 change {d_em:.2f}/{d_f1:.2f} "
                     f"(goal <= 0.1: {'meets' if max(d_em, d_f1) <= 0.1 else 'misses'})")
    lines += ["", "EM/F1: the official SQuAD v1.1 rules (lower-case, strip punctuation and a/an/the, collapse "
              "whitespace; maximum over the gold answers), implemented in this script.", "",
              f"Regenerate: `{payload['command']}` ({payload['seconds'] / 60:.0f} min including exports).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--targets", default="tflite,onnx")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=None, help="SQuAD v1.1 dev file (default: ../shared/...)")
    parser.add_argument("--model", type=Path, default=None, help="QA model folder (default: ../shared/models/minilm-l6-squad)")
    parser.add_argument("--work", type=Path, default=None, help="keep (and reuse) the exported files here")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from edgekit.modeling import load_tokenizer
    from edgekit.record import atomic_write_text
    from edgekit.bench import cpu_name

    data = args.data or shared_dir() / "data" / "squad-v1.1" / "dev-even-articles.json.xz"
    model_dir = args.model or shared_dir() / "models" / "minilm-l6-squad"
    for p in (data, model_dir):
        if not p.exists():
            raise SystemExit(f"{p} is not here: this benchmark needs the shared SQuAD data and QA model "
                             "(set EDGEKIT_SHARED or pass --data/--model)")
    t0 = time.perf_counter()
    questions = read_squad(data, args.questions)
    tokenizer = load_tokenizer(model_dir)
    work = args.work or Path(tempfile.mkdtemp(prefix="edgekit-buckets-"))
    results = []
    for target in [t for t in args.targets.split(",") if t]:
        path, record = export(model_dir, target, args.precision, work)
        print(f"[{target}] exported {path.name}, validated at {record.seq_len}", file=sys.stderr, flush=True)
        results.append(run_target(target, path, record, tokenizer, questions, args.threads))
    cmd = (f".venv/bin/python benchmarks/buckets.py --questions {args.questions} --targets {args.targets} "
           f"--precision {args.precision} --threads {args.threads}")
    payload = {"settings": {"questions": len(questions), "precision": args.precision, "threads": args.threads,
                            "buckets": list(BUCKETS), "max_seq_len": max(BUCKETS), "doc_stride": 128,
                            "max_answer_len": 15, "model": model_dir.name, "data": data.name},
               "host": {"cpu": cpu_name(), "cores": os.cpu_count()}, "results": results, "command": cmd,
               "metric": "official SQuAD v1.1 EM/F1, implemented in benchmarks/buckets.py",
               "seconds": round(time.perf_counter() - t0, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "buckets.json", json.dumps(payload, indent=2) + "\n")
    atomic_write_text(args.out / "buckets.md", render(payload))
    print(f"wrote {args.out / 'buckets.md'} and buckets.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
