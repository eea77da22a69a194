"""Real question answering on the phone's CPU: the shared SQuAD model's app files answered by the
aarch64 runtimes under QEMU (edgekit.check.arm64's environment), against x86 and PyTorch.

    python benchmarks/arm64_qa.py --n 200 --cpus neoverse-n1 --work /tmp/arm64qa

Exports (on x86) the TFLite int8-weight file the Android app ships (256 tokens, Task Library
metadata) and the ONNX int8-dynamic file, answers N shared dev questions with each file three
ways — PyTorch, the x86 runtime, the aarch64 runtime per CPU model (chunks of --chunk windows per
emulated process, --jobs processes side by side, each chunk's outputs cached in --work so that an
interrupted run resumes) — and writes benchmarks/results/arm64.{md,json}: EM/F1 and the
same-answer rate of arm64 vs x86 and vs PyTorch. Emulated time says nothing about phone latency.
Needs ../shared and `make arm64-env`.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from harness import shared_qa


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    shared_qa(p, 200)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--cpus", default="neoverse-n1")
    p.add_argument("--files", default="tflite:int8-weight,onnx:int8-dynamic")
    p.add_argument("--work", default="/tmp/edgekit-arm64-qa")
    p.add_argument("--chunk", type=int, default=20, help="windows per emulated process (default 20)")
    p.add_argument("--jobs", type=int, default=1, help="emulated processes side by side (default 1)")
    p.add_argument("--note", default="", help="a sentence for the results (e.g. the load while the cached chunks ran)")
    p.add_argument("--cached-only", action="store_true",
                   help="run nothing under emulation: write the results from the chunks cached so far (pending ones listed)")
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
    from edgekit.quality.qa import (
        QAConfig,
        QAPipeline,
        artifact_logits_fn,
        torch_logits_fn,
    )

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
    torch_row = {"file": "PyTorch fp32", "runtime": "torch (x86)", **score(torch_preds, None)}
    print(torch_row, file=sys.stderr)

    # Phase 1, on x86: export each file, answer with the x86 runtime, and record every window the
    # questions need (in call order; the pipeline is deterministic, so phase 3 can replay them).
    files = []
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
        x86_row = {"file": path.name, "runtime": f"{target} (x86)", **score(x86_preds, torch_preds)}
        print(x86_row, file=sys.stderr)
        calls: list[dict[str, np.ndarray]] = []

        def record_fn(ids, mask, types, calls=calls, names=x86.input_names):
            feed = {"input_ids": ids.astype(np.int32), "attention_mask": mask.astype(np.int32)}
            for n in ("token_type_ids", "segment_ids"):
                if n in names:
                    feed[n] = types.astype(np.int32)
            calls.append(feed)
            z = np.zeros(ids.shape, dtype=np.float32)
            return z, z

        answer(record_fn)
        mod = conv.arm64()
        self_test(mod.RUNTIME, cpus)
        files.append({"target": target, "path": path, "record": record, "mod": mod, "calls": calls,
                      "x86_row": x86_row, "x86_preds": x86_preds, "sha": hashlib.sha256(path.read_bytes()).hexdigest()})

    # Phase 2, emulated: every (file, CPU model, chunk of windows) is one aarch64 process whose
    # outputs are cached under WORK/arm64-cache by the file's sha256, the CPU model and the chunk's
    # inputs, so an interrupted run continues where it stopped and --jobs runs chunks side by side.
    cache = work / "arm64-cache"
    cache.mkdir(parents=True, exist_ok=True)
    tasks = []
    # CPU-model-major: every file on the first CPU model (a phone core) before the next model
    for cpu in cpus:
        for f in files:
            for start in range(0, len(f["calls"]), a.chunk):
                chunk = f["calls"][start:start + a.chunk]
                key = hashlib.sha256(b"".join(c["input_ids"].tobytes() + c["attention_mask"].tobytes()
                                              for c in chunk)).hexdigest()[:16]
                tasks.append((f, cpu, start, chunk, cache / f"{f['sha'][:16]}-{cpu}-{start:05d}-{key}.npz"))
    done_windows = {id(f): {c: 0 for c in cpus} for f in files}
    qemu_versions: dict[str, str] = {}
    emulated: dict[tuple[int, str], float] = {}
    lock = threading.Lock()
    t_emul = time.perf_counter()
    total = sum(len(t[3]) for t in tasks if not t[4].exists())
    ran = [0]

    def run_task(task) -> None:
        f, cpu, start, chunk, npz = task
        if a.cached_only and not npz.exists():
            return
        if not npz.exists():
            t1 = time.perf_counter()
            run = f["mod"].run_file(f["path"], f["record"], chunk, cpu=cpu, timeout=6 * 3600)
            arrays = {}
            for i, o in enumerate(run.outputs):
                arrays[f"s{i}"] = np.asarray(o["start_logits"])
                arrays[f"e{i}"] = np.asarray(o["end_logits"])
            tmp = npz.with_suffix(".tmp.npz")
            np.savez(tmp, qemu=np.array(run.qemu_version), seconds=np.array(time.perf_counter() - t1), **arrays)
            os.replace(tmp, npz)
            with lock:
                ran[0] += len(chunk)
                rate = (time.perf_counter() - t_emul) / ran[0]
                print(f"arm64 {f['target']} {cpu}: windows {start}-{start + len(chunk)} in "
                      f"{time.perf_counter() - t1:.0f} s; {ran[0]}/{total} new windows, ETA "
                      f"{rate * (total - ran[0]) / 60:.0f} min (load {os.getloadavg()[0]:.1f})", file=sys.stderr)
        with np.load(npz) as z:
            qemu_versions[cpu] = str(z["qemu"])
            with lock:
                done_windows[id(f)][cpu] += len(chunk)
                emulated[(id(f), cpu)] = emulated.get((id(f), cpu), 0.0) + float(z["seconds"])

    def rows_now() -> tuple[list[dict], list[str]]:
        rows, pending = [torch_row], []
        for f in files:
            rows.append(f["x86_row"])
            for cpu in cpus:
                if done_windows[id(f)][cpu] < len(f["calls"]):
                    pending.append(f"{f['path'].name} on {cpu}: {done_windows[id(f)][cpu]}/{len(f['calls'])} windows")
                    continue
                outs = []
                for task in tasks:
                    if task[0] is f and task[1] == cpu:
                        with np.load(task[4]) as z:
                            outs += [(z[f"s{i}"], z[f"e{i}"]) for i in range(len(task[3]))]
                it = iter(outs)
                arm_preds = answer(lambda ids, mask, types, it=it: next(it))
                rows.append({"file": f["path"].name, "runtime": f"{f['target']} (arm64 {cpu}, QEMU {qemu_versions[cpu]})",
                             **score(arm_preds, torch_preds),
                             "same_answer_vs_x86": round(sum(arm_preds[k] == f["x86_preds"][k] for k in f["x86_preds"])
                                                         / len(qs), 4),
                             "windows": len(f["calls"]), "emulated_seconds": round(emulated[(id(f), cpu)], 1)})
        return rows, pending

    loads = [os.getloadavg()[0]]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        futures = [pool.submit(run_task, t) for t in tasks]
        for fut in futures:
            fut.result()
            loads.append(os.getloadavg()[0])
    rows, pending = rows_now()
    for r in rows[1:]:
        print(r, file=sys.stderr)
    write_results(a, rows, pending, qs, geometry, loads, t0)
    return 0


def write_results(a, rows: list[dict], pending: list[str], qs, geometry, loads: list[float], t0: float) -> None:
    argv = sys.argv[1:]
    if "--note" in argv:  # the note is printed on its own below, not inside the command
        i = argv.index("--note")
        argv = argv[:i] + ["--note", "…"] + argv[i + 2:]
    cmd = "python benchmarks/arm64_qa.py " + " ".join(argv)
    meta = {"command": cmd, "host": platform.machine(), "load_1min_min_max": [round(min(loads), 2), round(max(loads), 2)],
            "questions": len(qs), "seq_len": a.seq_len, "doc_stride": geometry.doc_stride,
            "model": Path(a.model).name, "data": Path(a.dev).name, "date": time.strftime("%Y-%m-%d"),
            "seconds": round(time.perf_counter() - t0), "pending": pending, "note": a.note}
    Path(a.out + ".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = [f"# Real QA on the phone's CPU (ARM64 under QEMU): {meta['model']}", "",
             (f"`{cmd}` — {len(qs)} questions of {meta['data']}, windows of {a.seq_len} (stride "
              f"{geometry.doc_stride}), load {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores, "
              f"{meta['date']}, {meta['seconds']} s (emulated outputs cached in --work: a rerun reuses them)."), "",
             "Same answer: identical answer text. Emulated seconds are not phone latency.", ""]
    if a.note:
        lines += [a.note, ""]
    if pending:
        lines += ["**Incomplete** — not finished: " + "; ".join(pending) + ".", ""]
    lines += ["| file | runtime | EM | F1 | same answer vs PyTorch | same answer vs x86 | windows | emulated s |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        vs_x86 = f"{r['same_answer_vs_x86']:.1%}" if "same_answer_vs_x86" in r else "—"
        windows = f"{r['windows']} | {r['emulated_seconds']}" if "windows" in r else "— | —"
        lines.append(f"| {r['file']} | {r['runtime']} | {r['exact_match']:.2f} | {r['f1']:.2f} | "
                     f"{r.get('same_answer', 1.0):.1%} | {vs_x86} | {windows} |")
    Path(a.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

if __name__ == "__main__":
    sys.exit(main())
