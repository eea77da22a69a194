"""SQuAD quality of a real QA model and of every exported file; writes benchmarks/results/squad_quality.{md,json}.

    nice -n 10 .venv/bin/python benchmarks/squad_quality.py                      # the shared teacher, 1,000 dev questions
    nice -n 10 .venv/bin/python benchmarks/squad_quality.py --n 200 --only tflite:int8-dynamic,onnx:int8-dynamic
    .venv/bin/python benchmarks/squad_quality.py --models student=out/student plain=out/plain   # extra PyTorch rows
    .venv/bin/python benchmarks/squad_quality.py --render-only --out benchmarks/results/squad_quality_coreml

Each variant is exported at seq 384 by edgekit's pipeline (``edgekit.build.plan``: parity and, for TFLite, the
Task Library's own check), then put through the accuracy gate (``edgekit.quality.gate.Gate``: the
file in its own runtime and the PyTorch model on the same questions, edgekit's QA pipeline, official
v1.1 EM/F1). Rows: EM, F1, ΔF1 vs PyTorch, same-answer rate, size, seconds per question (tokenising,
every window through the runtime, decoding), gate verdict. Needs ``../shared`` (the model and dev set);
every finished row is cached under ``--work``, so an interrupted run resumes where it stopped.
The load average is recorded: on a shared machine the seconds per question are noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402

ROOT = harness.ROOT
SHARED = ROOT.parent / "shared"
MODEL = SHARED / "models" / "minilm-l6-squad"
DEV = SHARED / "data" / "squad-v1.1" / "dev-even-articles.json.xz"
TRAIN = SHARED / "data" / "squad-v1.1" / "train-reconstructed.json.xz"

#: (label, target, precision, export options). Order: what apps ship first, then the rest.
VARIANTS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("tflite int8-dynamic (Task Library metadata: per-tensor FC, FFN down-projection float)", "tflite", "int8-dynamic",
     {}),
    ("tflite int8-dynamic --no-metadata (per-channel FC)", "tflite", "int8-dynamic", {"metadata": False}),
    ("tflite int8-weight (per-channel, float compute; metadata)", "tflite", "int8-weight", {}),
    ("tflite int8-static (calibrated on SQuAD train text; metadata)", "tflite", "int8-static", {"calibration": "squad"}),
    ("onnx int8-dynamic", "onnx", "int8-dynamic", {}),
    ("onnx int8-static (calibrated on SQuAD train text)", "onnx", "int8-static", {"calibration": "squad"}),
    ("tflite fp16", "tflite", "fp16", {}),
    ("onnx fp16", "onnx", "fp16", {}),
    ("tflite fp32", "tflite", "fp32", {}),
    ("onnx fp32", "onnx", "fp32", {}),
    ("executorch int8-dynamic", "executorch", "int8-dynamic", {}),
    ("torchscript int8-dynamic", "torchscript", "int8-dynamic", {}),
    ("ort int8-dynamic", "ort", "int8-dynamic", {}),
    ("executorch fp32", "executorch", "fp32", {}),
    ("torchscript fp32", "torchscript", "fp32", {}),
    ("executorch int8-static (calibrated on SQuAD train text)", "executorch", "int8-static", {"calibration": "squad"}),
    ("coreml fp16 (MIL interpreter on Linux)", "coreml", "fp16", {}),
    ("coreml int8-weight (MIL interpreter on Linux)", "coreml", "int8-weight", {}),
]


def loadavg() -> str:
    """The 1/5/15-minute load averages as the results file shows them."""
    la = harness.load()
    return " ".join(f"{x:.2f}" for x in la) if la else "n/a"


def calibration_file(work: Path, n: int = 128) -> Path:
    """Real SQuAD *train* text (never the dev questions scored here): one 'question<TAB>context' pair per line,
    encoded as the model answers it (``edgekit.model.inputs.calibration``)."""
    from edgekit.quality.squad import load_squad

    path = work / "calibration-squad-train-pairs.txt"
    if not path.is_file():
        qs = load_squad(TRAIN)
        step = max(1, len(qs) // n)

        def flat(t: str) -> str:
            return " ".join(t.split())  # no tab or newline inside a text

        lines = [f"{flat(q.question)}\t{flat(q.context)}" for q in qs[::step][:n]]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _reference(work: Path, model: Any, tokenizer: Any, source: str, squad: str, n: int) -> Any:
    """The PyTorch model's answers (cached: they are the reference of every row)."""
    from edgekit.quality import evaluate
    from edgekit.quality.squad import load_squad

    cache = work / f"reference-{Path(source).name}-{n}.json"
    if cache.is_file():
        d = json.loads(cache.read_text())
        preds = {k: evaluate.Prediction(**v) for k, v in d.pop("predictions").items()}
        return evaluate.EvalResult(**d, predictions=preds)
    qs = load_squad(squad, n)
    subject = evaluate.pytorch_subject(source, "question-answering", model=model, tokenizer=tokenizer)
    ref = evaluate.evaluate_subject(subject, squad, qs)
    ref.same_answer, ref.reference = 1.0, source
    cache.write_text(json.dumps(ref.to_dict(predictions=True)))
    return ref


def run_variant(label: str, target: str, precision: str, extra: dict[str, Any], gate: Any, tokenizer: Any,
                args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Export one variant through the pipeline with the accuracy gate; its row."""
    from edgekit.core import registry
    from edgekit.core.record import Status

    conv = registry.get(target)
    if conv.missing_module():
        return {"label": label, "target": target, "precision": precision, "status": "unavailable",
                "reason": f"{conv.missing_module()} not installed"}
    folder = work / label.split(" (")[0].replace(" ", "_").replace("-", "_")
    flags = dict(extra)  # everything but the calibration is a target flag (Converter.flags, e.g. tflite's metadata)
    calibration = calibration_file(work) if flags.pop("calibration", None) == "squad" else None
    t0 = time.perf_counter()
    path, rec, model = harness.export(Path(args.model), target, precision, folder, seq=384, task="question-answering",
                                      flags=flags, calibration=calibration, gate=gate, verbose=True)
    export_s = time.perf_counter() - t0
    if rec.quality is None and rec.status != Status.EXPORT_FAILED and path.exists():
        # The pipeline gates validated files only; a file parity failed is scored as well.
        gate(path, rec, model, tokenizer)
        rec.save(path)
    q = asdict(rec.quality) if rec.quality else {}
    outs = rec.parity.outputs if rec.parity else []
    tl = rec.options.get("task_library") or {}
    am = q.get("artifact_metrics", {})
    return {
        "label": label, "target": target, "precision": precision, "options": {k: str(v) for k, v in extra.items()},
        "artifact": rec.artifact, "status": rec.status.value, "reason": rec.reason,
        "em": am.get("exact_match"), "f1": am.get("f1"), "delta_f1": (None if not am else -q["drop"]),
        "same_answer": q.get("same_answer"), "gate_passed": q.get("passed"), "max_f1_drop": q.get("max_drop"),
        "n": q.get("n"), "size_mb": rec.size_bytes / 1e6 if rec.size_bytes else None,
        "s_per_question": q.get("seconds_per_question"),
        "parity_min_cosine": min((o.cosine for o in outs), default=None),
        "task_library": ({"status": tl.get("status"), "agreement": tl.get("agreement"), "reason": tl.get("reason")}
                         if tl else None),
        "quantization": rec.options.get("quantization"), "export_s": round(export_s, 1),
        "quality_error": q.get("error") or q.get("skipped"), "loadavg": loadavg(),
    }


def extra_model_row(name: str, folder: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """A PyTorch-only row (teacher, task-distilled student, plain fine-tune) on the same questions."""
    from edgekit.distill.student import read_student_record
    from edgekit.quality import evaluate
    from edgekit.quality.squad import load_squad

    qs = load_squad(args.squad, args.n)
    r = evaluate.evaluate_subject(evaluate.pytorch_subject(folder, "question-answering"), args.squad, qs)
    meta = {}
    for card in ("finetune_card.json", "task_distillation_card.json"):
        p = Path(folder) / card
        if p.is_file():
            c = json.loads(p.read_text())
            meta = {k: c.get(k) for k in ("teacher", "budget", "steps", "examples_seen", "elapsed_s", "batch_size",
                                            "lr", "temperature", "loss_weights", "bf16_autocast", "dropout") if k in c}
            init = read_student_record(c["student_init"]) if c.get("student_init") else {}
            if init:
                meta["layer_map"] = init.get("layer_map")
    cfg = json.loads((Path(folder) / "config.json").read_text())
    layers = cfg.get("num_hidden_layers", cfg.get("n_layers"))
    return {"label": name, "folder": str(folder), "layers": layers, "em": r.metrics["exact_match"],
            "f1": r.metrics["f1"], "n": r.n, "s_per_question": r.seconds_per_question, "size_mb": r.size_bytes / 1e6
            if r.size_bytes else None, "training": meta, "loadavg": loadavg()}


def _rel(path: str) -> str:
    """Paths as a reader of the repository sees them (``../shared/...``); a path outside the repository's
    folder and its neighbours (``/tmp/...``) stays absolute: ``../../tmp/x`` would name nothing on a clone."""
    if not Path(path).exists():
        return path
    rel = os.path.relpath(os.path.abspath(path), ROOT)
    return str(Path(path).resolve()) if rel.startswith(os.pardir + os.sep + os.pardir) else rel


def render(data: dict[str, Any]) -> str:
    ref = data["pytorch"]
    lines = [
        f"# SQuAD v1.1 quality of `{Path(data['model']).name}` and its exported files", "",
        f"Generated by `{data['command']}` on {data['date']} ({data['machine']}; shared machine, load average "
        f"{data['loadavg_start']} at the start, {data['loadavg_end']} at the end, {data['threads']} thread(s) per "
        "runtime: seconds per question are indicative only).", "",
        f"Model: `{data['model']}` (exported at seq 384). Data: the first **{data['n']}** questions of "
        f"`{data['squad']}` (official v1.1 EM/F1, max over gold answers), answered through edgekit's QA pipeline "
        "(windows 384, stride 128, answers up to 15 tokens). ΔF1 and same-answer rate are against the PyTorch "
        "model on the same questions; *gate* is `edgekit export --eval-data` with its default bound "
        "(fp32 0.05, fp16 0.1, int8 1.0 F1 points). s/q: seconds per question, tokenising, every window through "
        "the runtime and decoding.", "",
        "| model / file | status | gate | EM | F1 | ΔF1 | same answer | size MB | s/q | parity cosine | Task Library |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| PyTorch fp32 (reference) | — | — | {ref['em']:.2f} | {ref['f1']:.2f} | — | 100% | "
        f"{ref['size_mb']:.1f} | {ref['s_per_question']:.3f} | — | — |",
    ]

    def f(v: Any, spec: str) -> str:
        return "—" if v is None else format(v, spec)

    for r in data["rows"]:
        tl = r.get("task_library") or {}
        tl_s = "—" if not tl else f"{tl.get('status')}" + (f" ({tl['agreement']:.0%})" if tl.get("agreement")
                                                            is not None else "")
        gate = "—" if r.get("gate_passed") is None else ("pass" if r["gate_passed"] else "**fail**")
        lines.append(
            f"| {r['label']} | {r['status']} | {gate} | {f(r.get('em'), '.2f')} | {f(r.get('f1'), '.2f')} "
            f"| {f(r.get('delta_f1'), '+.2f')} | {f(r.get('same_answer') and 100 * r['same_answer'], '.1f')}"
            f"{'%' if r.get('same_answer') is not None else ''} | {f(r.get('size_mb'), '.1f')} "
            f"| {f(r.get('s_per_question'), '.3f')} | {f(r.get('parity_min_cosine'), '.4f')} | {tl_s} |")
    notes = [f"- {r['label']}: {r['status']}: {r['reason']}" for r in data["rows"] if r.get("reason")]
    if notes:
        lines += ["", "Not passed / notes:", *notes]
    if data.get("models"):
        # A second ratio against the teacher trained as long as the students (issue 26 item 2b), when the
        # page has its row: the shared model had a third of their steps, so its ratio flatters them.
        eq = next((m for m in data["models"] if m["label"] == data.get("equal_budget_teacher")), None)
        eq_head, eq_rule = (" % of the equal-budget teacher's F1 |", "---:|") if eq else ("", "")

        def share(m: dict[str, Any]) -> str:
            return f" {100 * m['f1'] / eq['f1']:.1f}% |" if eq else ""

        lines += ["", "## Teacher, task-distilled student and plain fine-tune (PyTorch)", "",
                  f"| model | layers | EM | F1 | % of the shared model's F1 |{eq_head} size MB | s/q | training |",
                  f"|---|---:|---:|---:|---:|{eq_rule}---:|---:|---|",
                  f"| teacher (the PyTorch reference above) | {data.get('teacher_layers', '—')} | {ref['em']:.2f} "
                  f"| {ref['f1']:.2f} | 100% |{share(ref)} "
                  f"{ref['size_mb']:.1f} | {ref['s_per_question']:.3f} | the shared model |"]
        for m in data["models"]:
            tr = m.get("training") or {}
            tr_s = ", ".join(f"{k} {v}" for k, v in tr.items() if k not in ("loss_weights",)) or "—"
            lines.append(f"| {m['label']} | {m['layers']} | {m['em']:.2f} | {m['f1']:.2f} "
                         f"| {100 * m['f1'] / ref['f1']:.1f}% |{share(m)} {f(m.get('size_mb'), '.1f')} "
                         f"| {m['s_per_question']:.3f} | {tr_s} |")
        if eq:
            # Two teachers were trained for the students' 3,044 steps (two recipes): the column must say
            # which one it divides by (the json's equal_budget_teacher, and equal_budget_why for the choice).
            lines += ["", f"The column \"% of the equal-budget teacher's F1\" divides by the row \"{eq['label']}\" "
                          f"(F1 {eq['f1']:.2f})" + (f": {data['equal_budget_why']}" if data.get("equal_budget_why")
                                                    else ".")]
    if data.get("not_run"):
        lines += ["", "Not run in this session: " + ", ".join(data["not_run"]) + "."]
    for extra in data.get("notes", []):
        lines += ["", extra]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = harness.parser(__doc__, work="/tmp/edgekit-squad-quality", threads=1, only="target:precision items",
                       out=harness.RESULTS / "squad_quality", out_help="the results' path without .md/.json",
                       note=True, render_only=True)
    p.add_argument("--model", default=str(MODEL))
    p.add_argument("--squad", default=str(DEV))
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--skip", default="", help="comma list of targets to leave out")
    p.add_argument("--models", nargs="*", default=[], metavar="NAME=FOLDER", help="extra PyTorch rows")
    args = p.parse_args(argv)
    results = harness.Results(args.out, render, default=str)
    if args.render_only:
        return results.render_only()
    if not Path(args.model).is_dir() or not Path(args.squad).is_file():
        print(f"needs {args.model} and {args.squad} (../shared): nothing to do", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from edgekit.cli import _quiet_backends
    from edgekit.model.modeling import load_model, load_tokenizer
    from edgekit.quality.gate import Gate, GateOptions

    _quiet_backends()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    (work / "rows").mkdir(parents=True, exist_ok=True)
    model = load_model(args.model, "question-answering")
    tokenizer = load_tokenizer(args.model)
    start_load = loadavg()
    ref = _reference(work, model, tokenizer, args.model, args.squad, args.n)
    gate = Gate(GateOptions(Path(args.squad), n=args.n, threads=args.threads))
    gate.reference = ref  # the PyTorch answers every row is compared with
    only = harness.names(args.only)
    skip = harness.names(args.skip) or set()
    rows, not_run = [], []
    data: dict[str, Any] = {}

    def write() -> None:
        data.update(harness.stamp(__file__, argv, hide=("--note",)))
        data.update({
            "machine": f"{data['host']['cpu']}, {data['host']['cores']} cores", "loadavg_start": start_load,
            "loadavg_end": loadavg(), "threads": args.threads, "model": _rel(args.model), "squad": _rel(args.squad),
            "n": ref.n,
            "pytorch": {"em": ref.metrics["exact_match"], "f1": ref.metrics["f1"], "size_mb": (ref.size_bytes or 0) / 1e6,
                        "s_per_question": ref.seconds_per_question},
            "rows": rows, "not_run": not_run, "notes": args.note, "teacher_layers": model.config.num_layers})
        results.write(data)

    for label, target, precision, extra in VARIANTS:
        if (only and f"{target}:{precision}" not in only) or target in skip:
            not_run.append(label)
            continue
        key = work / "rows" / (label.split(" (")[0].replace(" ", "_") + f"-{ref.n}.json")
        if key.is_file():
            rows.append(json.loads(key.read_text()))
        else:
            print(f"== {label} (load {loadavg()})", file=sys.stderr, flush=True)
            try:
                row = run_variant(label, target, precision, extra, gate, tokenizer, args, work)
            except Exception as e:  # noqa: BLE001 - one broken variant must not lose the others' rows
                row = {"label": label, "target": target, "precision": precision, "status": "error",
                       "reason": f"{type(e).__name__}: {e}"}
            key.write_text(json.dumps(row, default=str))
            rows.append(row)
        write()
    models = []
    for spec in args.models:
        name, _, folder = spec.partition("=")
        key = work / "rows" / f"model-{name.replace(' ', '_')}-{ref.n}.json"
        if not key.is_file():
            print(f"== {name} (load {loadavg()})", file=sys.stderr, flush=True)
            key.write_text(json.dumps(extra_model_row(name, folder, args, work), default=str))
        models.append(json.loads(key.read_text()))
        data["models"] = models
        write()
    write()
    print(render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
