"""edgekit next to each peer's plain path, every runner timed in its own process; writes benchmarks/results/peers.{md,json}.

    .venv/bin/python benchmarks/peers.py                    # export everything, 3 passes, seq 128, 2 threads
    .venv/bin/python benchmarks/peers.py --passes 5 --work /tmp/peers   # keep (and reuse) the exported files
    .venv/bin/python benchmarks/peers.py --size tiny --passes 1 --runs 3 --only edgekit-onnx-fp32,peer-torch-onnx-ort-fp32 --out /tmp/p
    .venv/bin/python benchmarks/peers.py --render-only                  # the md again from the json

The model has DistilBERT-base's shape with a question-answering head (6 layers, hidden 768, 12
heads, FFN 3072, vocab 30522) and seeded random weights: latency depends on the shape only. Every
runner gets the same batch-1 input of 128 tokens and 2 threads.

Peers are what a user gets without edgekit, each the documented default of its tool, applied to
the transformers model:

* ``torch.onnx.export`` + ONNX Runtime (opset 17, TorchScript exporter), as is and after ORT's
  transformers optimizer (``optimize_model(model_type="bert")``), and ORT ``quantize_dynamic``
  (QInt8 weights) on the plain export;
* ``litert_torch.convert`` of the transformers model, fp32;
* ``torch.export`` + ``to_edge_transform_and_lower(XnnpackPartitioner())``, fp32;
* PyTorch eager fp32 and ``torch.ao.quantization.quantize_dynamic`` int8 (Linear layers).

Why one process per runner: ONNX Runtime, XNNPACK and PyTorch each keep a spinning thread pool;
two in one process steal each other's cores and make whichever runs second look slow. Why
passes in reversed order: on a shared machine the load changes over minutes; a runner measured
first in one pass is measured last in the next. The table reports the minimum and the median of
the passes' p50s (the minimum is the best estimate of the undisturbed speed; the median shows the
spread) and the load average when each pass started.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402

TASK = "question-answering"

#: name -> (runtime, how it is made, kind of file). Order: the table's order.
RUNNERS: dict[str, tuple[str, str]] = {
    "edgekit-tflite-fp32": ("LiteRT", "edgekit export --target tflite --precision fp32"),
    "edgekit-tflite-int8-dynamic": ("LiteRT", "edgekit export --target tflite --precision int8-dynamic --no-metadata"),
    "edgekit-onnx-fp32": ("ONNX Runtime", "edgekit export --target onnx --precision fp32"),
    "edgekit-onnx-int8-dynamic": ("ONNX Runtime", "edgekit export --target onnx --precision int8-dynamic"),
    "edgekit-onnx-int8-dynamic-full": ("ONNX Runtime", "edgekit export --target onnx --precision int8-dynamic-full "
                                                       "(the FFN down-projection int8 too)"),
    "edgekit-tflite-int8-static": ("LiteRT", "edgekit export --target tflite --precision int8-static --no-metadata "
                                              "(calibrated on the built-in sentences)"),
    "edgekit-onnx-int8-static": ("ONNX Runtime", "edgekit export --target onnx --precision int8-static (QDQ, U8S8; "
                                                 "calibrated on the built-in sentences)"),
    "edgekit-executorch-fp32": ("ExecuTorch", "edgekit export --target executorch --precision fp32"),
    "edgekit-executorch-int8-dynamic": ("ExecuTorch", "edgekit export --target executorch --precision int8-dynamic"),
    "peer-torch-onnx-ort-fp32": ("ONNX Runtime", "torch.onnx.export (opset 17) + onnxruntime"),
    "peer-ort-optimizer-fp32": ("ONNX Runtime", "plain export + onnxruntime.transformers optimize_model(bert)"),
    "peer-ort-quantize-dynamic": ("ONNX Runtime", "plain export + onnxruntime.quantization.quantize_dynamic(QInt8)"),
    "peer-litert-torch-fp32": ("LiteRT", "litert_torch.convert(transformers model)"),
    "peer-executorch-xnnpack-fp32": ("ExecuTorch", "torch.export + to_edge_transform_and_lower(XnnpackPartitioner)"),
    "peer-pytorch-eager-fp32": ("PyTorch", "transformers model, eager"),
    "peer-pytorch-eager-int8-dynamic": ("PyTorch", "torch.ao.quantization.quantize_dynamic(Linear, qint8)"),
}
ONNX_PEERS = ("peer-torch-onnx-ort-fp32", "peer-ort-optimizer-fp32", "peer-ort-quantize-dynamic")
#: Which plain peer each edgekit file is compared with (same runtime, same precision class).
PEER_OF = {
    "edgekit-tflite-fp32": "peer-litert-torch-fp32",
    "edgekit-onnx-fp32": "peer-torch-onnx-ort-fp32",
    "edgekit-executorch-fp32": "peer-executorch-xnnpack-fp32",
    "edgekit-tflite-int8-dynamic": "peer-ort-quantize-dynamic",
    "edgekit-onnx-int8-dynamic": "peer-ort-quantize-dynamic",
    "edgekit-onnx-int8-dynamic-full": "peer-ort-quantize-dynamic",
    "edgekit-executorch-int8-dynamic": "peer-ort-quantize-dynamic",
    "edgekit-tflite-int8-static": "peer-ort-quantize-dynamic",
    "edgekit-onnx-int8-static": "peer-ort-quantize-dynamic",
}


def hf_model(src: Path, attn: str | None = "eager") -> Any:
    """The transformers model: eager attention for exporters (what they trace reliably), the
    library's default attention (SDPA) for the PyTorch eager runners."""
    import transformers

    kw = {"attn_implementation": attn} if attn else {}
    m = transformers.DistilBertForQuestionAnswering.from_pretrained(str(src), **kw)
    return m.eval()


class _Logits:
    """The transformers model as a module returning (start, end) tensors: what plain exporters trace."""

    def __new__(cls, model: Any) -> Any:
        import torch

        class Wrap(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                out = self.inner(input_ids=input_ids, attention_mask=attention_mask)
                return out.start_logits, out.end_logits

        return Wrap(model).eval()


def sample(seq: int, dtype: Any = None) -> tuple[Any, Any]:
    import torch

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, harness.SIZES["base"]["vocab_size"], (1, seq), generator=g)
    ids[0, 0], ids[0, -1] = 101, 102
    mask = torch.ones(1, seq, dtype=torch.int64)
    return ids.to(dtype or torch.int64), mask.to(dtype or torch.int64)


def _took(payload: dict[str, Any]) -> str:
    """How long the run took, and how much of it was exporting (a --work that holds the files reuses them)."""
    total, prep = payload["seconds"] / 60, payload.get("prepare_seconds")
    if prep is None:
        return f"{total:.0f} min including exports"
    return (f"{total:.0f} min, of which {prep / 60:.0f} min making files; files already in --work are reused, "
            "a fresh --work exports them all")


# ---- making the files ---------------------------------------------------------------------------

def prepare(work: Path, seq: int, only: set[str] | None = None, size: str = "base") -> dict[str, dict[str, Any]]:
    """Export every file (skipping those already in ``work``); returns name -> {path, ...}."""
    import torch

    src = harness.build_checkpoint(work / f"distilbert-{size}-qa-random", TASK, size=size, perturb=True)
    files: dict[str, dict[str, Any]] = {}
    want = [n for n in RUNNERS if only is None or n in only]
    for name in want:
        t0 = time.perf_counter()
        try:
            info = _make(name, src, work, seq, harness.shape(size))
        except Exception as e:  # noqa: BLE001 - a peer that cannot convert is a result
            info = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        info["prepare_seconds"] = round(time.perf_counter() - t0, 1)
        files[name] = info
        print(f"[prepare] {name}: {info.get('error') or info.get('path')} ({info['prepare_seconds']} s)",
              file=sys.stderr, flush=True)
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    return files


def _make(name: str, src: Path, work: Path, seq: int, shape: dict[str, int]) -> dict[str, Any]:
    import torch

    out = work / "files"
    out.mkdir(parents=True, exist_ok=True)
    if name.startswith("edgekit-"):
        from edgekit.core.record import Status

        _, target, precision = name.split("-", 2)
        path, rec, _ = harness.export(src, target, precision, out, seq=seq, task=TASK, reuse=True,
                                      flags={"metadata": False} if target == "tflite" else {})
        if rec.status not in (Status.VALIDATED,):
            return {"path": str(path), "status": rec.status.value, "reason": rec.reason}
        return {"path": str(path), "status": rec.status.value, "size_bytes": rec.size_bytes}
    if name == "peer-pytorch-eager-fp32" or name == "peer-pytorch-eager-int8-dynamic":
        return {"path": str(src)}
    plain_onnx = out / "plain.onnx"
    if name in ONNX_PEERS:
        if not plain_onnx.exists():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(_Logits(hf_model(src)), sample(seq), str(plain_onnx),
                                  input_names=["input_ids", "attention_mask"],
                                  output_names=["start_logits", "end_logits"], opset_version=17, dynamo=False)
        if name == "peer-torch-onnx-ort-fp32":
            return {"path": str(plain_onnx), "size_bytes": plain_onnx.stat().st_size}
        if name == "peer-ort-optimizer-fp32":
            from onnxruntime.transformers import optimizer

            path = out / "plain.optimized.onnx"
            if not path.exists():
                opt = optimizer.optimize_model(str(plain_onnx), model_type="bert", num_heads=shape["n_heads"],
                                               hidden_size=shape["dim"])
                opt.save_model_to_file(str(path))
                fused = {k: int(v) for k, v in (opt.get_fused_operator_statistics() or {}).items() if v}
                (out / "plain.optimized.json").write_text(json.dumps(fused))
            fused = json.loads((out / "plain.optimized.json").read_text())
            return {"path": str(path), "size_bytes": path.stat().st_size, "fused_ops": fused}
        if name == "peer-ort-quantize-dynamic":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            path = out / "plain.int8.onnx"
            if not path.exists():
                quantize_dynamic(str(plain_onnx), str(path), weight_type=QuantType.QInt8)
            return {"path": str(path), "size_bytes": path.stat().st_size}
    if name == "peer-litert-torch-fp32":
        import litert_torch

        path = out / "plain.tflite"
        if not path.exists():
            ids, mask = sample(seq)
            litert_torch.convert(_Logits(hf_model(src)), (ids, mask)).export(str(path))
        return {"path": str(path), "size_bytes": path.stat().st_size}
    if name == "peer-executorch-xnnpack-fp32":
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

        path = out / "plain.pte"
        if not path.exists():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ep = torch.export.export(_Logits(hf_model(src)), sample(seq))
                path.write_bytes(to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch().buffer)
        return {"path": str(path), "size_bytes": path.stat().st_size}
    raise ValueError(f"unknown runner {name}")


# ---- timing one runner (in a child process) -------------------------------------------------------

def time_one(name: str, path: str, seq: int, threads: int, runs: int, warmup: int) -> dict[str, Any]:
    """Load one runner and time it; runs in its own process (see the module docstring)."""
    from dataclasses import asdict

    from edgekit.measure.bench import measure

    return asdict(measure(runner_call(name, path, seq, threads), warmup=warmup, runs=runs))


def runner_call(name: str, path: str, seq: int, threads: int) -> Callable[[], Any]:
    """One inference of runner ``name`` (``edgekit-*``: an exported file in its edgekit runner; a peer:
    its own runtime) on the benchmark's sample, as a call to time."""
    import numpy as np

    ids, mask = sample(seq)
    feed32 = {"input_ids": ids.numpy().astype(np.int32), "attention_mask": mask.numpy().astype(np.int32)}
    if name.startswith("edgekit-"):
        from edgekit.core import registry
        import torch
        from edgekit.core.record import ArtifactRecord

        torch.set_num_threads(threads)
        record = ArtifactRecord.load(Path(path))
        runner = registry.get(record.target).load(Path(path), record, threads=threads)
        feed = dict(feed32)
        if "token_type_ids" in runner.input_names:
            feed["token_type_ids"] = np.zeros_like(feed32["input_ids"])
        fn = lambda: runner.run(feed)  # noqa: E731
    elif name in ONNX_PEERS:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        so.log_severity_level = 3
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
        fn = lambda: sess.run(None, feeds)  # noqa: E731
    elif "litert" in name:
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_path=path, num_threads=threads)
        run = interp.get_signature_runner()
        details = run.get_input_details()  # args_0 (input_ids), args_1 (attention_mask)
        args = {k: (ids if i == 0 else mask).numpy().astype(details[k]["dtype"]) for i, k in enumerate(sorted(details))}
        fn = lambda: run(**args)  # noqa: E731
    elif "executorch" in name:
        import torch
        from executorch.extension.pybindings import portable_lib
        from executorch.runtime import Runtime

        portable_lib._unsafe_reset_threadpool(threads)  # noqa: SLF001
        method = Runtime.get().load_program(path).load_method("forward")
        fn = lambda: method.execute([ids, mask])  # noqa: E731
    else:
        import torch

        torch.set_num_threads(threads)
        model = _Logits(hf_model(Path(path), attn=None))
        if name.endswith("int8-dynamic"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)

        def fn() -> Any:
            with torch.inference_mode():
                return model(ids, mask)
    return fn


def run_child(name: str, path: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", name, "--child-path", path, "--seq", str(args.seq),
           "--threads", str(args.threads), "--runs", str(args.runs), "--warmup", str(args.warmup)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:] if proc.stderr else ''}"}


# ---- report -----------------------------------------------------------------------------------------

def summarise(files: dict[str, dict[str, Any]], passes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name, (runtime, how) in RUNNERS.items():
        if name not in files:
            continue
        p50s = [p["results"][name]["p50_ms"] for p in passes if "p50_ms" in p["results"].get(name, {})]
        errors = [p["results"][name].get("error") for p in passes if p["results"].get(name, {}).get("error")]
        rows.append({
            "runner": name, "runtime": runtime, "how": how, "size_bytes": files[name].get("size_bytes"),
            "p50_ms_per_pass": [round(v, 2) for v in p50s],
            "min_p50_ms": round(min(p50s), 2) if p50s else None,
            "median_p50_ms": round(statistics.median(p50s), 2) if p50s else None,
            "error": files[name].get("error") or files[name].get("reason") or (errors[0] if errors else None),
            **({"fused_ops": files[name]["fused_ops"]} if "fused_ops" in files[name] else {}),
        })
    return rows


def verdicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each edgekit file against its runtime's plain peer (min of passes): the issue's targets."""
    by = {r["runner"]: r for r in rows}
    out = []
    for mine, peer in PEER_OF.items():
        a, b = by.get(mine), by.get(peer)
        if not a or not b or a["min_p50_ms"] is None or b["min_p50_ms"] is None:
            continue
        ratio = a["min_p50_ms"] / b["min_p50_ms"]
        goal = 1.0 if mine.endswith("fp32") else 1 / 1.2  # fp32 <= 1.0x its peer; int8 >= 1.2x faster than quantize_dynamic
        out.append({"edgekit": mine, "peer": peer, "ratio": round(ratio, 3), "speedup": round(1 / ratio, 3),
                    "goal": "<= 1.0x the peer" if mine.endswith("fp32") else ">= 1.2x faster than the peer",
                    "meets": ratio <= goal})
    return out


def render(payload: dict[str, Any]) -> str:
    s = payload["settings"]
    lines = [f"# edgekit vs the peers' plain paths (DistilBERT-{harness.size_of(s['shape'])} shape, question answering)", "",
             f"Batch 1, {s['seq']} tokens, {s['threads']} threads; random seeded weights (latency depends on the "
             f"shape only). Each runner timed in its own process, {len(payload['passes'])} passes, order reversed "
             f"every pass; {s['runs']} timed runs after {s['warmup']} warm-up runs per pass.", "",
             f"Machine: {payload['host']['cpu']}, {payload['host']['cores']} cores, shared with other jobs. "
             "Load average (1/5/15 min) when each pass started: "
             + "; ".join(f"pass {i + 1}: {' / '.join(f'{v:.1f}' for v in p['load_average'])}"
                         for i, p in enumerate(payload["passes"])) + ".", ""]
    high = max((p["load_average"][0] for p in payload["passes"] if p["load_average"]), default=0)
    if high > payload["host"]["cores"]:
        lines += [f"**The load was high** (up to {high:.1f} on {payload['host']['cores']} cores): absolute "
                  "milliseconds are inflated and noisy. Ratios between runners of one pass are the meaningful part; "
                  "the minimum over passes is the least disturbed estimate.", ""]
    lines += ["| runner | runtime | how it is made | size MB | min p50 ms | median p50 ms | p50 per pass |",
              "|---|---|---|---:|---:|---:|---|"]
    for r in sorted(payload["rows"], key=lambda r: (r["min_p50_ms"] is None, r["min_p50_ms"] or 0)):
        size = f"{r['size_bytes'] / 1e6:.1f}" if r.get("size_bytes") else "–"
        if r["min_p50_ms"] is None:
            lines.append(f"| {r['runner']} | {r['runtime']} | {r['how']} | {size} | – | – | failed: {r['error']} |")
            continue
        per = ", ".join(f"{v:.1f}" for v in r["p50_ms_per_pass"])
        lines.append(f"| {r['runner']} | {r['runtime']} | {r['how']} | {size} | {r['min_p50_ms']:.1f} | "
                     f"{r['median_p50_ms']:.1f} | {per} |")
    lines += ["", "## Against the targets of issue 16", "",
              "| edgekit | plain peer | edgekit / peer (min p50) | goal | verdict |", "|---|---|---:|---|---|"]
    for v in payload["verdicts"]:
        lines.append(f"| {v['edgekit']} | {v['peer']} | {v['ratio']:.2f}x | {v['goal']} | "
                     f"{'meets' if v['meets'] else 'misses'} |")
    lines += ["", "Peers apply each tool's documented default to the transformers model (exporters trace its eager "
              "attention; the PyTorch runners use the library default, SDPA); "
              "int8 rows are compared with ORT `quantize_dynamic`, the usual int8 peer. The int8 F1 gate of issue 16 "
              "needs a real QA model: see benchmarks/results/buckets.md and DESIGN.md.", "",
              f"Regenerate: `{payload['command']}` ({_took(payload)}).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__, work=None, threads=2, only="runner names", size=True, out=harness.RESULTS,
                            out_help="where peers.md/.json go", render_only=True)
    harness.ints(parser, seq=128, runs=30, warmup=5, passes=3)
    parser.add_argument("--prepare-only", action="store_true", help="export the files, time nothing")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-path", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(time_one(args.child, args.child_path, args.seq, args.threads, args.runs, args.warmup)))
        return 0
    results = harness.Results(args.out / "peers", render)
    if args.render_only:
        return results.render_only()

    t0 = time.perf_counter()
    with harness.workdir(args.work, "edgekit-peers-") as work:
        files = prepare(work, args.seq, harness.names(args.only), args.size)
        (work / "files.json").write_text(json.dumps(files, indent=2))
        if args.prepare_only:
            return 0
        order = [n for n in RUNNERS if n in files and "path" in files[n] and not files[n].get("error")]
        passes = []
        for k in range(args.passes):
            names = order if k % 2 == 0 else list(reversed(order))
            p = {"order": names, "load_average": harness.load(), "results": {}}
            for name in names:
                p["results"][name] = run_child(name, files[name]["path"], args)
                r = p["results"][name]
                print(f"[pass {k + 1}] {name}: {r.get('p50_ms', r.get('error'))} (load {harness.load()[0]:.1f})",
                      file=sys.stderr, flush=True)
            p["load_average_end"] = harness.load()
            passes.append(p)
    rows = summarise(files, passes)
    payload = {
        "settings": {"seq": args.seq, "threads": args.threads, "runs": args.runs, "warmup": args.warmup,
                     "shape": harness.shape(args.size), "task": TASK, "batch": 1},
        "passes": [{"order": p["order"], "load_average": p["load_average"], "load_average_end": p["load_average_end"],
                    "p50_ms": {n: r.get("p50_ms") for n, r in p["results"].items()}} for p in passes],
        "rows": rows, "verdicts": verdicts(rows), "seconds": round(time.perf_counter() - t0, 1),
        "prepare_seconds": round(sum(f.get("prepare_seconds", 0) for f in files.values()), 1),
    }
    results.write(payload, harness.stamp(__file__, argv))
    print(f"wrote {results.md} and peers.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
