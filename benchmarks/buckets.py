"""Per-question latency on real SQuAD questions, fixed 384 vs length buckets; writes benchmarks/results/buckets.{md,json}.

    .venv/bin/python benchmarks/buckets.py                       # 1,000 questions, TFLite and ONNX, fp32
    .venv/bin/python benchmarks/buckets.py --questions 50 --targets onnx --out /tmp/b   # a smoke run
    .venv/bin/python benchmarks/buckets.py --render-only                 # the md again from the json

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
SQuAD v1.1 rules (``edgekit.quality.squad``; the committed run predates it and used a copy of the same
rules in this script, which its results file says).
"""
from __future__ import annotations

import collections
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402

BUCKETS = (128, 256, 384)
METRIC = "official SQuAD v1.1 EM/F1 (edgekit.quality.squad)"


def shared_dir() -> Path:
    """``../shared`` beside the checkout (EDGEKIT_SHARED overrides)."""
    env = os.environ.get("EDGEKIT_SHARED")
    return Path(env) if env else harness.ROOT.parent / "shared"


def squad_scores(predictions: dict[str, str], questions: list[Any]) -> dict[str, float]:
    """EM and F1 in percent (``edgekit.quality.squad.evaluate``: max over gold answers, mean over questions)."""
    from edgekit.quality import squad

    scores = squad.evaluate(questions, predictions)
    return {"exact_match": scores["exact_match"], "f1": scores["f1"]}


# ---- the run ---------------------------------------------------------------------------------------

def run_target(target: str, path: Path, record: Any, tokenizer: Any, questions: list[Any],
               threads: int) -> dict[str, Any]:
    import torch

    from edgekit.core import registry
    from edgekit.quality.qa import QAConfig, QAPipeline, artifact_logits_fn

    torch.set_num_threads(threads)
    runner = registry.get(target).load(path, record, threads=threads)
    fn = artifact_logits_fn(runner)
    pipes = {
        "fixed": QAPipeline(tokenizer, fn, QAConfig(max_seq_len=max(BUCKETS), doc_stride=128, pad_to=max(BUCKETS))),
        "bucketed": QAPipeline(tokenizer, fn, QAConfig(max_seq_len=max(BUCKETS), doc_stride=128, buckets=BUCKETS)),
    }
    for pipe in pipes.values():  # warm up every length once
        for q in questions[:3]:
            pipe(q.question, q.context)
    times: dict[str, list[float]] = {k: [] for k in pipes}
    preds: dict[str, dict[str, str]] = {k: {} for k in pipes}
    lengths: collections.Counter[int] = collections.Counter()
    load_start = harness.load()
    for i, q in enumerate(questions):
        order = list(pipes) if i % 2 == 0 else list(reversed(pipes))
        for k in order:
            t0 = time.perf_counter()
            answers = pipes[k](q.question, q.context)
            times[k].append((time.perf_counter() - t0) * 1000)
            preds[k][q.id] = answers[0].text if answers else ""
        for w in pipes["bucketed"].encode(q.question, q.context)[2]:
            lengths[len(w.input_ids)] += 1
        if (i + 1) % 100 == 0:
            print(f"[{target}] {i + 1}/{len(questions)} questions, load {harness.load()[0]:.1f}", file=sys.stderr,
                  flush=True)
    same = sum(preds["fixed"][q.id] == preds["bucketed"][q.id] for q in questions)
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
        "load_average_start": load_start, "load_average_end": harness.load(),
        "differing": [{"id": q.id, "fixed": preds["fixed"][q.id], "bucketed": preds["bucketed"][q.id]}
                      for q in questions if preds["fixed"][q.id] != preds["bucketed"][q.id]][:20],
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
    # Runs before edgekit.quality.squad scored with a copy of its rules in this script; the json says which.
    where = ("implemented in this script" if "benchmarks/buckets.py" in payload.get("metric", "")
             else "computed by edgekit.quality.squad")
    lines += ["", "EM/F1: the official SQuAD v1.1 rules (lower-case, strip punctuation and a/an/the, collapse "
              f"whitespace; maximum over the gold answers), {where}.", "",
              f"Regenerate: `{payload['command']}` ({payload['seconds'] / 60:.0f} min including exports).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__, work=None, threads=2, out=harness.RESULTS, out_help="where buckets.md/.json go",
                            render_only=True)
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--targets", default="tflite,onnx")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--data", type=Path, default=None, help="SQuAD v1.1 dev file (default: ../shared/...)")
    parser.add_argument("--model", type=Path, default=None, help="QA model folder (default: ../shared/models/minilm-l6-squad)")
    args = parser.parse_args(argv)
    results = harness.Results(args.out / "buckets", render)
    if args.render_only:
        return results.render_only()

    from edgekit.model.modeling import load_tokenizer
    from edgekit.quality.squad import load_squad

    data = args.data or shared_dir() / "data" / "squad-v1.1" / "dev-even-articles.json.xz"
    model_dir = args.model or shared_dir() / "models" / "minilm-l6-squad"
    for p in (data, model_dir):
        if not p.exists():
            raise SystemExit(f"{p} is not here: this benchmark needs the shared SQuAD data and QA model "
                             "(set EDGEKIT_SHARED or pass --data/--model)")
    t0 = time.perf_counter()
    questions = load_squad(data, args.questions)
    tokenizer = load_tokenizer(model_dir)
    results_by_target = []
    with harness.workdir(args.work, "edgekit-buckets-") as work:
        for target in [t for t in args.targets.split(",") if t]:
            path, record, _ = harness.export(model_dir, target, args.precision, work, task="question-answering",
                                             seq=",".join(map(str, BUCKETS)), reuse=True,
                                             flags={"metadata": False} if target == "tflite" else {})
            if record.status.value != "validated":
                raise SystemExit(f"{target} {args.precision}: {record.status.value}: {record.reason}")
            print(f"[{target}] exported {path.name}, validated at {record.seq_len}", file=sys.stderr, flush=True)
            results_by_target.append(run_target(target, path, record, tokenizer, questions, args.threads))
    payload = {"settings": {"questions": len(questions), "precision": args.precision, "threads": args.threads,
                            "buckets": list(BUCKETS), "max_seq_len": max(BUCKETS), "doc_stride": 128,
                            "max_answer_len": 15, "model": model_dir.name, "data": data.name},
               "results": results_by_target, "metric": METRIC, "seconds": round(time.perf_counter() - t0, 1)}
    results.write(payload, harness.stamp(__file__, argv))
    print(f"wrote {results.md} and buckets.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
