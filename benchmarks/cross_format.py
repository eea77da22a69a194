"""Cross-format benchmark on a DistilBERT-base-sized model; writes benchmarks/results/cross_format.{md,json}.

    .venv/bin/python benchmarks/cross_format.py            # every registered target, seq 128, 2 threads
    .venv/bin/python benchmarks/cross_format.py --targets onnx,tflite --runs 50
    .venv/bin/python benchmarks/cross_format.py --size tiny --targets onnx --runs 3 --out /tmp/cf   # a smoke run
    .venv/bin/python benchmarks/cross_format.py --render-only      # md and html again from the json

The model has DistilBERT-base's shape (6 layers, hidden 768, 12 heads, FFN 3072, vocab 30522) and
random weights (seeded): speed and size depend on the shape only, and parity is measured against
the same weights in PyTorch. Nothing is downloaded. Every registered target runs; a target whose
backend is missing is listed as unavailable. The results file says, per target, whether it meets
the goals (fp32 within 1.1x of the fastest fp32 runtime; best int8 <= 20 ms with task agreement
>= 99%) and by how much it misses. Re-run and commit the results whenever performance changes;
run it on a quiet machine (the load average is recorded in the file).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402

TASK = "sequence-classification"
FP32_GOAL = 1.1      # every fp32 artifact within 1.1x of the fastest fp32 runtime
INT8_GOAL_MS = 20.0  # the best int8 artifact at or under 20 ms ...
INT8_AGREEMENT = 0.99  # ... with task agreement >= 99 %

#: The likely cause of a missed goal, from how each target runs (the measured evidence that goes
#: with it is computed from the run itself; see ``evidence``).
KNOWN_REASONS = {
    "torchscript": "runs the same ATen kernels as eager PyTorch (no attention/layer-norm fusion); its int8 "
                   "uses QNNPACK, the engine phones use, whose x86 kernels are not tuned",
    "torchscript-lite": "the lite interpreter runs the same ATen kernels as eager PyTorch, with no fusion",
    "executorch": "XNNPACK delegate: kernels tuned for ARM phones; on x86 attention and layer norm run as "
                  "separate ops",
    "tflite": "LiteRT with XNNPACK on x86: attention and layer norm run as separate ops",
    "coreml": "Core ML runs only on Apple hardware; not timed here",
    "onnx": "GEMM-bound like every fp32 runtime here: an ORT profile of the fp32 file (25 runs, this host) puts "
            "62% of kernel time in MatMul at ~390 GFLOP/s (o-projection and FFN), 26% in the fused Attention and "
            "8% in SkipLayerNormalization (2.9 ms for 12 layer norms); the gap to XNNPACK sits in those non-GEMM "
            "kernels. Fusing attention itself gains little in fp32 (34.3 vs 35.7 ms unfused); it is what lets int8 "
            "quantise the Q/K/V projection",
    "ort": "the onnx target's model in ORT flatbuffer format, run by the same kernels: a gap of a few percent "
           "between the two is run-to-run noise",
}


def evidence(target: str, rows: list[dict[str, Any]], eager_ms: float | None) -> str:
    """Numbers from this run that explain a target's standing: vs eager, int8 vs its own fp32."""
    mine = {r["precision"]: r for r in rows if r["target"] == target and r["p50_ms"] is not None}
    parts = []
    f = mine.get("fp32")
    if f and eager_ms:
        parts.append(f"fp32 {f['p50_ms']:.1f} ms = {f['p50_ms'] / eager_ms:.2f}x eager")
    q = [r for p, r in mine.items() if p.startswith("int8")]
    if f and q:
        b = min(q, key=lambda r: r["p50_ms"])
        ratio = f["p50_ms"] / b["p50_ms"]
        parts.append(f"{b['precision']} is {ratio:.2f}x faster than its fp32" if ratio >= 1
                     else f"{b['precision']} is {1 / ratio:.2f}x slower than its fp32")
    return "; ".join(parts)


def goals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-target verdicts on the fp32 and int8 goals, with the margin of every miss."""
    timed = [r for r in rows if r["target"] != "pytorch-eager" and r["p50_ms"] is not None]
    fp32 = [r for r in timed if r["precision"] == "fp32" and r["status"] == "validated"]
    eager = next((r for r in rows if r["target"] == "pytorch-eager"), None)
    fastest = min(fp32, key=lambda r: r["p50_ms"]) if fp32 else None
    int8 = [r for r in timed if r["precision"].startswith("int8") and r["status"] == "validated"
            and (r["agreement"] or 0) >= INT8_AGREEMENT]
    best_int8 = min(int8, key=lambda r: r["p50_ms"]) if int8 else None
    per_target: dict[str, dict[str, Any]] = {}
    for target in dict.fromkeys(r["target"] for r in rows if r["target"] != "pytorch-eager"):
        mine = [r for r in rows if r["target"] == target]
        v: dict[str, Any] = {}
        f = next((r for r in mine if r["precision"] == "fp32"), None)
        if f is None:
            v["fp32"] = "no fp32 artifact"
        elif f["p50_ms"] is None:
            v["fp32"] = f"not timed: {f.get('latency_note') or f.get('reason') or f['status']}"
        elif fastest is not None:
            ratio = f["p50_ms"] / fastest["p50_ms"]
            v["fp32_ratio"] = round(ratio, 3)
            v["fp32"] = ("meets" if ratio <= FP32_GOAL else
                         f"misses: {ratio:.2f}x the fastest fp32 ({fastest['target']} {fastest['p50_ms']:.1f} ms), "
                         f"{f['p50_ms'] - FP32_GOAL * fastest['p50_ms']:.1f} ms over the 1.1x bound")
            if f["status"] != "validated":
                v["fp32"] += f" (status {f['status']}: {f.get('reason')})"
        q = [r for r in mine if r["precision"].startswith("int8") and r["p50_ms"] is not None]
        if not q:
            v["int8"] = "no timed int8 artifact"
        else:
            b = min(q, key=lambda r: r["p50_ms"])
            agree = b["agreement"]
            ok_agree = b["status"] == "validated" and (agree or 0) >= INT8_AGREEMENT
            v["int8_best"] = {"precision": b["precision"], "p50_ms": round(b["p50_ms"], 2), "agreement": agree}
            if b["p50_ms"] <= INT8_GOAL_MS and ok_agree:
                v["int8"] = "meets"
            else:
                why = []
                if b["p50_ms"] > INT8_GOAL_MS:
                    why.append(f"{b['p50_ms']:.1f} ms is {b['p50_ms'] - INT8_GOAL_MS:.1f} ms "
                               f"({b['p50_ms'] / INT8_GOAL_MS:.2f}x) over 20 ms")
                if not ok_agree:
                    why.append(f"agreement {agree if agree is None else format(agree, '.1%')}, status {b['status']}")
                v["int8"] = "misses: " + "; ".join(why)
        if "misses" in v.get("fp32", "") or "misses" in v.get("int8", ""):
            ev = evidence(target, rows, eager["p50_ms"] if eager else None)
            v["why"] = "; ".join(x for x in (KNOWN_REASONS.get(target, ""), ev and f"measured: {ev}") if x)
        per_target[target] = v
    return {
        "fastest_fp32": fastest and {"target": fastest["target"], "p50_ms": round(fastest["p50_ms"], 2)},
        "eager_fp32_p50_ms": eager and eager["p50_ms"] and round(eager["p50_ms"], 2),
        "best_int8": best_int8 and {"target": best_int8["target"], "precision": best_int8["precision"],
                                    "p50_ms": round(best_int8["p50_ms"], 2), "agreement": best_int8["agreement"]},
        "best_int8_meets": bool(best_int8 and best_int8["p50_ms"] <= INT8_GOAL_MS),
        "targets": per_target,
    }


def report_of(payload: dict[str, Any]) -> Any:
    """The report (``edgekit.measure.tables.Report``) the results json holds."""
    from edgekit.measure.tables import Report, Row

    try:
        return Report(payload["title"], payload["host"], [Row(**r) for r in payload["rows"]])
    except (KeyError, TypeError) as e:
        raise SystemExit(f"the results json does not hold a report of the current format ({type(e).__name__}: {e}); "
                         "it predates edgekit.measure.tables' rows: re-run the benchmark to refresh it") from None


def render(payload: dict[str, Any]) -> str:
    """The md: the report's table, then the goal verdicts and how it was measured (all from the json)."""
    from edgekit.measure import tables

    rep, verdict, s = report_of(payload), payload["goals"], payload["settings"]
    lines = [tables.markdown(rep).rstrip(), "", "## Goals", "",
             f"- fp32: every fp32 artifact within {FP32_GOAL}x of the fastest fp32 runtime "
             f"(fastest: {_fmt_best(verdict['fastest_fp32'])}; PyTorch eager fp32: {verdict['eager_fp32_p50_ms']} ms)",
             f"- int8: the best int8 artifact <= {INT8_GOAL_MS:g} ms with task agreement >= {INT8_AGREEMENT:.0%} "
             f"(best: {_fmt_best(verdict['best_int8'])}: "
             f"{'meets' if verdict['best_int8_meets'] else 'misses'})", "",
             "| target | fp32 goal | best int8 | int8 goal | why (likely cause; measured evidence) |",
             "|---|---|---|---|---|"]
    for target, v in verdict["targets"].items():
        b = v.get("int8_best")
        best = f"{b['precision']} {b['p50_ms']} ms" if b else "–"
        lines.append(f"| {target} | {v.get('fp32', '–')} | {best} | {v.get('int8', '–')} | {v.get('why', '')} |")
    if payload["unavailable"]:
        lines += ["", "Targets unavailable in this run:", ""]
        lines += [f"- {t}: {why}" for t, why in payload["unavailable"].items()]
    else:
        ran = [t for t in verdict["targets"]]
        lines += ["", f"Every registered target was available in this run: {', '.join(ran)}."]
    h = rep.host
    skip = s.get("skip")
    lines += ["", "## How this was measured", "",
              f"- `benchmarks/cross_format.py --seq {s['seq']} --threads {s['threads']} --runs {s['runs']} "
              f"--warmup {s['warmup']}{' --skip ' + skip if skip else ''}` ({payload['seconds'] / 60:.1f} min); "
              f"batch 1; model shape {s['shape']}, task {s['task']}, "
              "random seeded weights (size and speed depend on the shape only)",
              f"- Load average before / after: {h.get('load_average')} / {h.get('load_average_end')} on "
              f"{h.get('cores')} cores. The machine is shared: a load above the core count means other work "
              "competed for the CPU and latencies are inflated (ratios between targets measured back to back are "
              "more stable than absolute numbers).",
              "- Latency: p50/p90 of timed runs after warm-up, each runtime pinned to the same threads; "
              "speed-up is over PyTorch eager fp32 measured in the same run. Repeated runs on this host move a "
              "p50 by up to ~10% (the onnx and ort fp32 files run identical kernels and swapped places between "
              "runs), so a 1.1x verdict inside that band is not significant.",
              "- Parity: worst output over random and tokenised inputs (with padding), against the same weights "
              "in PyTorch fp32; agreement is label argmax."]
    lines += [f"- {note}" for note in s.get("notes", [])]
    lines.append("")
    return "\n".join(lines)


def render_html(payload: dict[str, Any]) -> str:
    from edgekit.measure import html

    return html.render(report_of(payload))


def _fmt_best(b: dict[str, Any] | None) -> str:
    if not b:
        return "none"
    prec = f" {b['precision']}" if "precision" in b else ""
    agree = f", agreement {b['agreement']:.1%}" if b.get("agreement") is not None else ""
    return f"{b['target']}{prec} {b['p50_ms']} ms{agree}"


def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__, work=None, threads=2, size=True, note=True, out=harness.RESULTS,
                            out_help="where cross_format.md/.json/.html go", render_only=True)
    harness.ints(parser, seq=128, runs=30, warmup=5)
    parser.add_argument("--targets", default=None, help="comma-separated (default: every registered target)")
    parser.add_argument("--precisions", default=None, help="comma-separated (default: all each target supports)")
    parser.add_argument("--skip", default=None, help="comma-separated target or target:precision items to leave out")
    args = parser.parse_args(argv)
    results = harness.Results(args.out / "cross_format", render, default=str, also={".html": render_html})
    if args.render_only:
        return results.render_only()

    from dataclasses import asdict

    from edgekit.measure import tables
    from edgekit.measure.bench import bench_records

    shape = harness.shape(args.size)
    t0 = time.perf_counter()
    with harness.workdir(args.work, "edgekit-crossbench-") as work:
        src = harness.build_checkpoint(work / f"distilbert-{args.size}-random", TASK, size=args.size, perturb=True)
        out = work / "artifacts"
        result = harness.export_many(src, TASK, out, targets=args.targets, precisions=args.precisions,
                                     seqs=[args.seq], skip=args.skip)
        unavailable = {j.target: j.skipped for j in result.skipped if j.precision == "-"}
        bench_records(result.paths, args.threads, args.runs, args.warmup, pin=True, models=result.models)
        rep = tables.build(tables.collect(out), title=f"Cross-format benchmark (DistilBERT-{args.size} size)")
        seconds = time.perf_counter() - t0
        payload = {"goals": goals([asdict(r) for r in rep.rows]), "unavailable": unavailable,
                   "seconds": round(seconds, 1),
                   "settings": {"seq": args.seq, "threads": args.threads, "runs": args.runs, "warmup": args.warmup,
                                "shape": shape, "task": TASK, "skip": args.skip, "notes": args.note},
                   **rep.to_dict()}
        results.write(payload, harness.stamp(__file__, argv))
    print(f"wrote {results.md} and .json/.html in {seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
