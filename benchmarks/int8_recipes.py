"""ONNX/ORT int8-dynamic recipes side by side (issue 27): SQuAD F1 on the shared QA model, and speed against ORT's
plain ``quantize_dynamic``; writes benchmarks/results/int8_recipes.{md,json}.

    nice -n 5 .venv/bin/python benchmarks/int8_recipes.py                                  # both parts, every recipe
    nice -n 5 .venv/bin/python benchmarks/int8_recipes.py --part quality --only smooth-0.5,ffn-float
    nice -n 5 .venv/bin/python benchmarks/int8_recipes.py --part speed --passes 5
    .venv/bin/python benchmarks/int8_recipes.py --render-only

The recipes are ``edgekit.targets.onnx.converter.DYNAMIC_RECIPES`` (what the FFN down-projection gets: float,
int8, or int8 after SmoothQuant outlier migration with alpha 0.5 / 0.75; per-channel or per-tensor weights;
and ORT's ``quantize_dynamic`` with its documented defaults). Every file is made by edgekit's pipeline
(``edgekit export --target onnx --precision int8-dynamic``, parity validation included) with the recipe
swapped in for the run.

* ``quality``: the shared SQuAD model (``../shared/models/minilm-l6-squad``) at seq 384, put through the
  accuracy gate (``edgekit.quality.gate``) on the first ``--n`` questions of the shared dev set: EM, F1,
  ΔF1 against PyTorch with its 95% paired-bootstrap interval, same-answer rate, size, parity cosine (the
  worst output's, from the record). F1 does not depend on the machine's load. Rows are cached under
  ``--work`` (``rows/``), so runs with different ``--only`` can fill one results file, even at once.
* ``speed``: the peer benchmark's model (``benchmarks/peers.py``: DistilBERT-base shape, QA head, seeded
  random weights, 128 tokens, batch 1, ``--speed-threads`` threads) for every recipe and for the peer
  (plain ``torch.onnx.export`` + ``quantize_dynamic(QInt8)``, made by ``peers._make``), each timed in its
  own process (``time_child``: median wall and CPU milliseconds per run), ``--passes`` passes in an order
  reversed every pass; the load average is recorded per pass. The ratio to the peer is taken within each
  pass, and the table gives each runner's min/median p50 and the per-pass ratios. On a loaded machine
  ``--speed-threads 1`` and its CPU-time ratio are the robust measure; the issue's target is judged on it
  when present (``choose``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness, peers  # noqa: E402

ROOT = harness.ROOT
SHARED = ROOT.parent / "shared"
MODEL = SHARED / "models" / "minilm-l6-squad"
DEV = SHARED / "data" / "squad-v1.1" / "dev-even-articles.json.xz"
TASK = "question-answering"
PEER = "peer-ort-quantize-dynamic"
#: The issue's targets: the F1 bound on the shared questions and the speed-up over the peer.
MAX_F1_DROP = 1.0
MIN_SPEEDUP = 1.2
#: The measurement the speed target is judged on: the peer benchmark's 2 threads, wall clock.
SPEED_KEY = "speed_2t"


def recipes() -> dict[str, Any]:
    from edgekit.targets.onnx.converter import DYNAMIC_RECIPES

    return DYNAMIC_RECIPES


@contextlib.contextmanager
def use_recipe(name: str) -> Iterator[None]:
    """int8-dynamic files made in this block use recipe ``name``."""
    from edgekit.targets.onnx import converter

    before = converter.DYNAMIC_RECIPE
    converter.DYNAMIC_RECIPE = converter.DYNAMIC_RECIPES[name]
    try:
        yield
    finally:
        converter.DYNAMIC_RECIPE = before


def default_recipe() -> str:
    from edgekit.targets.onnx import converter

    return converter.DYNAMIC_RECIPE.name


# ---- quality ----------------------------------------------------------------------------------------

def quality_row(name: str, gate: Any, model: Any, tokenizer: Any, args: Any, work: Path) -> dict[str, Any]:
    path, rec, _ = harness.export(Path(args.model), "onnx", "int8-dynamic", work / "quality" / name, seq=384,
                                  task=TASK, gate=gate, verbose=True)
    if rec.quality is None and path.exists():
        # The pipeline gates validated files only; a file parity failed is scored too (as squad_quality does).
        gate(path, rec, model, tokenizer)
        rec.save(path)
    q = asdict(rec.quality) if rec.quality else {}
    am = q.get("artifact_metrics") or {}
    outs = rec.parity.outputs if rec.parity else []
    return {"recipe": name, "status": rec.status.value, "reason": rec.reason, "artifact": str(path),
            "size_mb": round(rec.size_bytes / 1e6, 2) if rec.size_bytes else None,
            "parity_min_cosine": min((o.cosine for o in outs), default=None),
            "parity_cosine": {o.name: o.cosine for o in outs},
            "em": am.get("exact_match"), "f1": am.get("f1"), "delta_f1": None if not am else -q["drop"],
            "drop_interval": q.get("drop_interval"), "same_answer": q.get("same_answer"), "n": q.get("n"),
            "gate_passed": q.get("passed"), "s_per_question": q.get("seconds_per_question"),
            "notes": rec.notes, "load_average": harness.load()}


def run_quality(args: Any, work: Path, names: list[str], results: harness.Results) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from edgekit.cli import _quiet_backends
    from edgekit.model.modeling import load_model, load_tokenizer
    from edgekit.quality.gate import Gate, GateOptions

    from benchmarks import squad_quality

    _quiet_backends()
    torch.set_num_threads(args.threads)
    (work / "rows").mkdir(parents=True, exist_ok=True)
    model = load_model(args.model, TASK)
    tokenizer = load_tokenizer(args.model)
    ref = squad_quality._reference(work, model, tokenizer, args.model, args.squad, args.n)  # noqa: SLF001
    gate = Gate(GateOptions(Path(args.squad), n=args.n, threads=args.threads))
    gate.reference = ref
    for name in names:
        key = work / "rows" / f"quality-{name}-{ref.n}.json"
        if not key.is_file():
            print(f"== quality {name} (load {harness.load()})", file=sys.stderr, flush=True)
            with use_recipe(name):
                row = quality_row(name, gate, model, tokenizer, args, work)
            key.write_text(json.dumps(row, default=str))
        row = json.loads(key.read_text())
        with results.update() as data:
            data.setdefault("quality", {})[name] = row
            data["pytorch"] = {"em": ref.metrics["exact_match"], "f1": ref.metrics["f1"], "n": ref.n,
                               "model": squad_quality._rel(args.model), "squad": squad_quality._rel(args.squad)}  # noqa: SLF001
            data.setdefault("stamps", {})["quality"] = harness.stamp(__file__, hide=("--note",))
            data["quality_threads"] = args.threads


# ---- speed ------------------------------------------------------------------------------------------

def time_child(name: str, path: str, seq: int, threads: int, runs: int, warmup: int) -> dict[str, Any]:
    """In its own process: load one file, run it, and return the median wall and CPU milliseconds per run.

    CPU time (``time.process_time``: this process's user + system seconds) is the work one run costs; with one
    intra-op thread it barely moves when other jobs share the cores, where wall time grows with the load."""
    # The peer in its own runtime, every recipe's file in its edgekit runner: built as peers.py builds them.
    fn = peers.runner_call(name if name == PEER else f"edgekit-{name}", path, seq, threads)
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpu.append((time.process_time() - c0) * 1e3)
        wall.append((time.perf_counter() - w0) * 1e3)
    return {"p50_ms": statistics.median(wall), "cpu_p50_ms": statistics.median(cpu)}


def run_child(name: str, path: str, args: Any) -> dict[str, Any]:
    import subprocess

    cmd = [sys.executable, __file__, "--child", name, "--child-path", path, "--seq", str(args.seq),
           "--speed-threads", str(args.speed_threads), "--runs", str(args.runs), "--warmup", str(args.warmup)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=1800)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:] if proc.stderr else ''}"}


def run_speed(args: Any, work: Path, names: list[str], results: harness.Results) -> None:
    src = harness.build_checkpoint(work / "distilbert-base-qa-random", TASK, size="base", perturb=True)
    files: dict[str, dict[str, Any]] = {}
    for name in names:
        with use_recipe(name):
            path, rec, _ = harness.export(src, "onnx", "int8-dynamic", work / "speed" / name, seq=args.seq,
                                          task=TASK, reuse=True)
        files[name] = {"path": str(path), "size_bytes": rec.size_bytes, "status": rec.status.value}
        print(f"[prepare] {name}: {path} {rec.status.value}", file=sys.stderr, flush=True)
    files[PEER] = peers._make(PEER, src, work, args.seq, harness.shape("base"))  # noqa: SLF001
    order = [*names, PEER]
    passes = []
    for k in range(args.passes):
        seq_order = order if k % 2 == 0 else list(reversed(order))
        p = {"order": seq_order, "load_average": harness.load(), "p50_ms": {}, "cpu_p50_ms": {}}
        for name in seq_order:
            r = run_child(name, files[name]["path"], args)
            p["p50_ms"][name], p["cpu_p50_ms"][name] = r.get("p50_ms"), r.get("cpu_p50_ms")
            print(f"[pass {k + 1}] {name}: wall {r.get('p50_ms', r.get('error'))} cpu {r.get('cpu_p50_ms')} "
                  f"(load {harness.load()[0]:.1f})", file=sys.stderr, flush=True)
        p["load_average_end"] = harness.load()
        passes.append(p)
    rows = {}
    for name in order:
        row: dict[str, Any] = {"size_mb": round(files[name]["size_bytes"] / 1e6, 2) if files[name].get("size_bytes") else None}
        for key, label in (("p50_ms", ""), ("cpu_p50_ms", "cpu_")):
            p50 = [p[key][name] for p in passes if p[key].get(name)]
            ratios = [p[key][name] / p[key][PEER] for p in passes if p[key].get(name) and p[key].get(PEER)]
            row.update({f"{label}p50_ms_per_pass": [round(v, 2) for v in p50],
                        f"{label}min_p50_ms": round(min(p50), 2) if p50 else None,
                        f"{label}median_p50_ms": round(statistics.median(p50), 2) if p50 else None,
                        f"{label}ratio_to_peer_per_pass": [round(r, 3) for r in ratios],
                        f"{label}median_ratio_to_peer": round(statistics.median(ratios), 3) if ratios else None,
                        f"{label}min_ratio_to_peer": round(min(ratios), 3) if ratios else None})
        rows[name] = row
    with results.update() as data:
        data[f"speed_{args.speed_threads}t"] = {"settings": {"seq": args.seq, "threads": args.speed_threads, "runs": args.runs,
                                      "warmup": args.warmup, "shape": harness.shape("base"), "batch": 1},
                         "passes": passes, "rows": rows, "stamp": harness.stamp(__file__, hide=("--note",))}


# ---- report -----------------------------------------------------------------------------------------

def _f(v: Any, spec: str, none: str = "—") -> str:
    return none if v is None else format(v, spec)


def _x(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}x"


def _speedup(data: dict[str, Any], key: str, name: str, pre: str = "") -> float | None:
    ratio = ((data.get(key) or {}).get("rows", {}).get(name) or {}).get(f"{pre}median_ratio_to_peer")
    return round(1 / ratio, 3) if ratio else None


def choose(data: dict[str, Any]) -> dict[str, Any]:
    """The issue's rule: the fastest recipe with ΔF1 within the bound and >= 1.2x the peer's speed; else
    the fastest accurate one and by how much it misses. Speed is judged on the one-thread CPU-time ratio
    when there is one (on a loaded machine the two-thread wall ratio is mostly the scheduler's), else on
    the two-thread wall ratio; both are kept."""
    both = []
    for name, q in data.get("quality", {}).items():
        wall2 = _speedup(data, "speed_2t", name)
        cpu1 = _speedup(data, "speed_1t", name, "cpu_")
        judged = cpu1 if cpu1 is not None else wall2
        if q.get("delta_f1") is None or judged is None:
            continue
        both.append({"recipe": name, "delta_f1": q["delta_f1"], "same_answer": q.get("same_answer"),
                     "speedup_wall_2t": wall2, "speedup_cpu_1t": cpu1, "speedup": judged,
                     "judged_on": "cpu_1t" if cpu1 is not None else "wall_2t",
                     "accurate": -q["delta_f1"] <= MAX_F1_DROP, "fast": judged >= MIN_SPEEDUP})
    meets = [b for b in both if b["accurate"] and b["fast"]]
    accurate = [b for b in both if b["accurate"]]
    return {"candidates": both,
            "meets_both": max(meets, key=lambda b: b["speedup"])["recipe"] if meets else None,
            "fastest_accurate": max(accurate, key=lambda b: b["speedup"]) if accurate else None,
            "fastest": max(both, key=lambda b: b["speedup"]) if both else None}


def _render_speed(sp: dict[str, Any]) -> list[str]:
    s = sp["settings"]
    lines = ["", f"## Speed at {s['threads']} thread(s): against ORT's plain `quantize_dynamic`", "",
             f"The peer benchmark's model (`benchmarks/peers.py`: DistilBERT-base shape, QA head, seeded random "
             f"weights), batch 1, {s['seq']} tokens, {s['threads']} intra-op thread(s); each file timed in its own "
             f"process ({s['runs']} runs after {s['warmup']} warm-up), {len(sp['passes'])} passes, order reversed every "
             "pass. *ratio* is the file's p50 over the peer's p50 in the same pass (median and best over passes); "
             "speed-up = 1 / median ratio. *wall*: elapsed milliseconds per run; *CPU*: this process's CPU "
             "milliseconds per run (with one thread, the work a run costs, which other jobs on the cores barely "
             "move; with two, ORT's spinning threads count too). Load average (1/5/15 min) at the start of each pass: "
             + "; ".join(f"{i + 1}: {' / '.join(f'{v:.1f}' for v in p['load_average'])}"
                         for i, p in enumerate(sp["passes"])) + ".", ""]
    high = max((p["load_average"][0] for p in sp["passes"] if p["load_average"]), default=0)
    cores = sp["stamp"]["host"]["cores"]
    if high > cores:
        lines += [f"**The machine was loaded** (up to {high:.1f} on {cores} cores): wall milliseconds are inflated "
                  "many times over and the wall ratios are noisy.", ""]
    lines += ["| file | size MB | wall p50 ms (min / median) | wall ratio per pass | wall speed-up | "
              "CPU p50 ms (min / median) | CPU ratio per pass | CPU speed-up |",
              "|---|---:|---:|---|---:|---:|---|---:|"]
    for name, r in sp["rows"].items():
        label = f"{name} (peer)" if name == PEER else name
        cells = []
        for pre in ("", "cpu_"):
            if r.get(f"{pre}min_p50_ms") is None:
                cells += ["—", "—", "—"]
                continue
            med = r.get(f"{pre}median_ratio_to_peer")
            cells += [f"{r[f'{pre}min_p50_ms']:.1f} / {r[f'{pre}median_p50_ms']:.1f}",
                      ", ".join(f"{v:.2f}" for v in r[f"{pre}ratio_to_peer_per_pass"]),
                      _f(med and 1 / med, ".2f") + "x"]
        lines.append(f"| {label} | {_f(r.get('size_mb'), '.1f')} | " + " | ".join(cells) + " |")
    lines += ["", f"Regenerate: `{sp['stamp']['command']}`."]
    return lines


def render(data: dict[str, Any]) -> str:
    from edgekit.targets.onnx.converter import DYNAMIC_RECIPES, FULL_RECIPE

    lines = ["# ONNX/ORT int8-dynamic recipes (issue 27)", "",
             "What the FFN down-projection gets decides both answers and speed: ORT quantises each activation with one "
             "scale per tensor, and the GELU outputs it reads carry outliers. *smooth* recipes migrate them into "
             "the weights first (SmoothQuant: `X·W = (X/s)·(s·W)`, s_j = max|X_j|^α / max|W_j|^(1−α) from edgekit's "
             "calibration reader; the 1/s is a Mul before the MatMul because GELU is not linear). Every file is made "
             "by edgekit's pipeline with the recipe swapped in (`benchmarks/int8_recipes.py`).", "",
             f"Default recipe of `edgekit export --target onnx/ort --precision int8-dynamic`: **{data.get('default')}**; "
             f"of `--precision int8-dynamic-full`: **{FULL_RECIPE.name}**.",
             "", "| recipe | what |", "|---|---|"]
    for name, r in DYNAMIC_RECIPES.items():
        lines.append(f"| {name} | {r.describe()} |")
    q = data.get("quality") or {}
    if q:
        ref = data["pytorch"]
        st = data["stamps"]["quality"]
        lines += ["", f"## Answers: the shared SQuAD model, first {ref['n']:,} dev questions", "",
                  f"`{ref['model']}` exported at seq 384, scored through edgekit's QA pipeline and the accuracy gate "
                  f"(`edgekit.quality.gate`, official v1.1 F1) against PyTorch: EM {ref['em']:.2f}, F1 {ref['f1']:.2f}. "
                  f"ΔF1 is the file's F1 minus PyTorch's, with the 95% paired-bootstrap interval of the drop; same "
                  f"answer: the share of answer spans identical to PyTorch's; parity cosine: the worst output's in "
                  f"edgekit's parity validation. These numbers do not depend on the machine's load. "
                  f"{data.get('quality_threads', 1)} thread(s); last row written {st['date']}.", "",
                  "| recipe | status | size MB | parity cosine | EM | F1 | ΔF1 | drop interval | same answer | gate (≤ 1.0) |",
                  "|---|---|---:|---:|---:|---:|---:|---|---:|---|"]
        for name in DYNAMIC_RECIPES:
            r = q.get(name)
            if not r:
                continue
            iv = r.get("drop_interval")
            gate = "—" if r.get("gate_passed") is None else ("pass" if r["gate_passed"] else "**fail**")
            lines.append(f"| {name} | {r['status']} | {_f(r.get('size_mb'), '.1f')} | {_f(r.get('parity_min_cosine'), '.4f')} "
                         f"| {_f(r.get('em'), '.2f')} | {_f(r.get('f1'), '.2f')} | {_f(r.get('delta_f1'), '+.2f').replace('-0.00', '+0.00')} "
                         f"| {'—' if not iv else f'[{iv[0]:+.2f}, {iv[1]:+.2f}]'} "
                         f"| {_f(r.get('same_answer') and 100 * r['same_answer'], '.1f', '—')}{'%' if r.get('same_answer') else ''} | {gate} |")
        lines += ["", f"Regenerate: `{st['command']}` (rows cached under `--work`)."]
    for key in ("speed_2t", "speed_1t"):
        sp = data.get(key)
        if sp:
            lines += _render_speed(sp)
    c = choose(data)
    if c["candidates"]:
        lines += ["", f"## Against the issue's targets (ΔF1 ≥ −{MAX_F1_DROP} on the shared questions, ≥ {MIN_SPEEDUP}x "
                  "the peer's speed)", "",
                  "Speed is judged on the one-thread CPU-time ratio where it was measured (robust to the load), "
                  "else on the two-thread wall ratio; both are shown.", "",
                  "| recipe | ΔF1 | same answer | speed-up, 2 threads, wall | speed-up, 1 thread, CPU | F1 target "
                  "| speed target |", "|---|---:|---:|---:|---:|---|---|"]
        for b in sorted(c["candidates"], key=lambda b: -b["speedup"]):
            lines.append(f"| {b['recipe']} | {b['delta_f1']:+.2f} | {_f(b['same_answer'] and 100 * b['same_answer'], '.1f')}% "
                         f"| {_x(b['speedup_wall_2t'])} | {_x(b['speedup_cpu_1t'])} "
                         f"| {'meets' if b['accurate'] else 'misses'} | {'meets' if b['fast'] else 'misses'} |")
        if c["meets_both"]:
            lines += ["", f"**{c['meets_both']}** meets both targets."]
        else:
            fa, ff = c["fastest_accurate"], c["fastest"]
            lines += ["", "No recipe meets both targets."]
            if fa:
                lines.append(f"The fastest that keeps the answers, **{fa['recipe']}**, is {fa['speedup']:.2f}x the peer's "
                             f"speed: {MIN_SPEEDUP - fa['speedup']:.2f} short of {MIN_SPEEDUP}x.")
    for note in data.get("notes", []):
        lines += ["", note]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = harness.parser(__doc__, work="/tmp/edgekit-int8-recipes", threads=1, only="recipe names",
                       out=harness.RESULTS / "int8_recipes", out_help="the results' path without .md/.json",
                       note=True, render_only=True, full_doc=False)
    harness.ints(p, seq=128, speed_threads=2, runs=30, warmup=5, passes=5, n=1000)
    p.add_argument("--part", choices=["quality", "speed", "both"], default="both")
    p.add_argument("--model", default=str(MODEL))
    p.add_argument("--squad", default=str(DEV))
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-path", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(time_child(args.child, args.child_path, args.seq, args.speed_threads, args.runs, args.warmup)))
        return 0
    results = harness.Results(args.out, render, default=str)
    if args.render_only:
        return results.render_only()
    only = harness.names(args.only)
    names = [n for n in recipes() if only is None or n in only]
    work = Path(args.work)
    if args.part in ("quality", "both"):
        if not Path(args.model).is_dir() or not Path(args.squad).is_file():
            print(f"needs {args.model} and {args.squad} (../shared) for the quality part", file=sys.stderr)
            return 2
        run_quality(args, work, names, results)
    if args.part in ("speed", "both"):
        run_speed(args, work, names, results)
    with results.update() as data:
        data["default"] = default_recipe()
        data["choice"] = choose(data)
        if args.note:
            data["notes"] = args.note
    print(results.md.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
