"""``edgekit`` command line. Exit codes: 0 ok, 1 parity or export failed, 2 usage or environment error."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable

from . import __version__
from .errors import EdgekitError, UsageError
from .tasks import infer_task

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_OUT = Path("edgekit-out")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 already; keep our prefix and hint
        self.print_usage(sys.stderr)
        raise UsageError(message)


# ---- helpers ----------------------------------------------------------------------------------

def _quiet_backends() -> None:
    """Silence import-time chatter of backends (absl, TF logging) that buries our own output."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "2")
    import logging
    import warnings

    for name in ("torchao", "coremltools", "torch.utils._pytree", "absl", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:
        pass


def _resolve_targets(spec: str) -> tuple[list[Any], list[tuple[str, str]]]:
    """(available converters, [(unavailable name, extra)]) for a target name or ``all``."""
    from . import registry

    if spec != "all":
        convs = [registry.get(name.strip()) for name in spec.split(",")]
        for conv in convs:
            conv.require()
        return convs, []
    ok, missing = [], []
    for conv in registry.converters().values():
        (missing.append((conv.name, conv.extra)) if conv.missing_module() else ok.append(conv))
    return ok, missing


def _precisions(spec: str, conv: Any, only_supported: bool) -> list[Any]:
    """The precisions to export for one target; ``only_supported`` drops what it cannot export (sweeps)."""
    from .precision import Precision

    if spec == "all":
        return list(conv.precisions)
    return Precision.select([p.strip() for p in spec.split(",")], conv.precisions, only_supported)


def _tolerance_overrides(args: argparse.Namespace) -> dict[str, float | None]:
    return {"max_abs": args.max_abs, "min_cosine": args.min_cosine, "min_psnr": args.min_psnr,
            "min_agreement": args.min_agreement}


def _exit_code(records: list[Any], strict: bool) -> int:
    from .record import Status

    bad = {Status.PARITY_FAILED, Status.EXPORT_FAILED} | ({Status.VALIDATION_SKIPPED} if strict else set())
    return EXIT_FAILED if any(r.status in bad for r in records) else EXIT_OK


def _bench_records(paths: list[Path], threads: int | None, runs: int, warmup: int) -> list[Any]:
    """Latency of each artifact plus PyTorch eager fp32 of its source, measured in this run."""
    from . import registry
    from .console import console
    from .export import bench_artifact, bench_eager
    from .modeling import load_model
    from .record import ArtifactRecord, Status
    from .config import SeqLen

    eager: dict[tuple[str, str, int, str], dict[str, Any]] = {}
    records = []
    for i, path in enumerate(paths, 1):
        rec = ArtifactRecord.load(path)
        records.append(rec)
        if rec.status == Status.EXPORT_FAILED:
            continue
        seq = SeqLen.parse(rec.seq_len).default
        key = (rec.source.get("source", ""), rec.task, seq, rec.source.get("token_types", "auto"))
        if key not in eager:
            try:
                model = load_model(key[0], rec.task, token_types=key[3] if key[3] in ("fold", "keep") else "auto")
                eager[key] = bench_eager(model, seq, threads=threads, runs=runs, warmup=warmup)
                console.print(f"[bold]pytorch eager fp32[/] seq {seq}: p50 {eager[key]['p50_ms']:.1f} ms")
            except EdgekitError as e:
                eager[key] = {}
                console.print(f"[yellow]no eager baseline for {key[0]}[/]: {e}")
        console.print(f"[{i}/{len(paths)}] {rec.artifact}")
        untimed = registry.get(rec.target).benchmark_unavailable()
        if untimed:
            console.print(f"    [yellow]not timed[/]: {untimed}")
            continue
        try:
            lat = bench_artifact(path, rec, threads=threads, runs=runs, warmup=warmup, seq=seq)
        except Exception as e:  # noqa: BLE001 - a runtime that cannot run the file is reported, not raised
            rec.notes.append(f"bench failed: {type(e).__name__}: {e}")
            rec.save(path)
            continue
        if eager[key]:
            lat["eager_p50_ms"] = eager[key]["p50_ms"]
            lat["eager_p90_ms"] = eager[key]["p90_ms"]
        rec.latency = lat
        rec.save(path)
        console.print(f"    p50 {lat['p50_ms']:.1f} ms, p90 {lat['p90_ms']:.1f} ms ({lat['threads']} threads)")
    return records


def _artifact_paths(out: Path, records: list[Any]) -> list[Path]:
    return [out / r.artifact for r in records]


def _write_reports(out: Path, records: list[Any], threads: int | None = None) -> str:
    from . import report
    from .record import atomic_write_text

    md = report.to_markdown(records, threads=threads)
    atomic_write_text(out / "report.md", md)
    atomic_write_text(out / "report.json", report.to_json(records, threads=threads))
    try:
        from . import report_html
    except ImportError:
        return md
    atomic_write_text(out / "report.html", report_html.to_html(records, threads=threads))
    return md


# ---- commands ---------------------------------------------------------------------------------

def cmd_targets(args: argparse.Namespace) -> int:
    from . import registry

    print("| target | suffix | precisions | sequence lengths | flags | status |")
    print("|---|---|---|---|---|---|")
    for conv in registry.converters().values():
        missing = conv.missing_module()
        status = f"needs `pip install 'edgekit[{conv.extra}]'`" if missing else "available"
        flags = ", ".join(_FLAG_NAMES.get(f, "--" + f.replace("_", "-")) for f in sorted(conv.flags)) or "—"
        print(f"| {conv.name} | {conv.suffix} | {', '.join(p.value for p in conv.precisions)} "
              f"| {', '.join(conv.seq_kinds)} | {flags} | {status} |")
    return EXIT_OK


def _export_many(args: argparse.Namespace, model_path: str, task_name: str, target: str, precision: str,
                 out: Path) -> list[Any]:
    from .config import ExportOptions, SeqLen
    from .console import console
    from .export import export_model
    from .modeling import load_model, load_tokenizer
    from .precision import Precision
    from .tasks import Task

    task = Task.parse(task_name)
    if getattr(args, "calibration", None) is not None and Precision.INT8_STATIC.value not in precision \
            and precision != "all":
        raise UsageError("--calibration only applies to --precision int8-static")
    seq = SeqLen.parse(args.seq_len) if args.seq_len else SeqLen.parse("384" if task == Task.QUESTION_ANSWERING else "128")
    convs, missing = _resolve_targets(target)
    jobs = []
    for conv in convs:
        for p in _precisions(precision, conv, only_supported=target == "all"):
            # A calibration file belongs to the int8-static jobs of a multi-precision run only.
            calibration = getattr(args, "calibration", None) if p == Precision.INT8_STATIC else None
            opts = ExportOptions(target=conv.name, task=task, precision=p, seq_len=seq, token_types=args.token_types,
                                 ane=getattr(args, "ane", False), deployment_target=getattr(args, "deployment_target", None),
                                 calibration=calibration, metadata=not getattr(args, "no_metadata", False))
            jobs.append((conv, opts))
    from .export import check_options

    if target == "all" or precision == "all":
        # A sweep drops what a target cannot do (a flag it does not take, int4 before iOS 18)
        # and says so, rather than failing the whole run.
        from dataclasses import replace

        if target == "all":
            jobs = [(c, replace(o, **{f: _DEFAULTS[f] for f in o.set_fields() - c.flags})) for c, o in jobs]
        kept = []
        for conv, opts in jobs:
            try:
                check_options(conv, opts)
                kept.append((conv, opts))
            except UsageError as e:
                console.print(f"[yellow]skipping {conv.name} {opts.precision}[/]: {e}")
        jobs = kept
    else:
        for conv, opts in jobs:
            check_options(conv, opts)
    for name, extra in missing:
        console.print(f"[yellow]{name}: unavailable[/] (pip install 'edgekit[{extra}]')")
    console.print(f"loading {model_path} for {task} …")
    model = load_model(model_path, task, token_types=args.token_types)
    try:
        tokenizer = load_tokenizer(model_path)
    except EdgekitError:
        tokenizer = None
        console.print("[yellow]no tokenizer found: parity uses random token ids only[/]")
    records = []
    for i, (conv, opts) in enumerate(jobs, 1):
        console.rule(f"[{i}/{len(jobs)}] {conv.name} {opts.precision}")
        tol = conv.tolerance(opts.precision).merged(**_tolerance_overrides(args))
        records.append(export_model(model, opts, out, tokenizer=tokenizer, tolerance=tol,
                                    validate=not args.no_validate))
    return records


_FLAG_NAMES = {"metadata": "--no-metadata"}
_DEFAULTS = {"ane": False, "deployment_target": None, "calibration": None, "metadata": True}


def cmd_export(args: argparse.Namespace) -> int:
    _quiet_backends()
    out = Path(args.out)
    task = args.task or infer_task(args.model)
    records = _export_many(args, args.model, task, args.target, args.precision, out)
    if args.bench:
        records = _bench_records(_artifact_paths(out, records), args.threads, args.runs, args.warmup)
    from . import report

    print(report.to_markdown(records, title=f"edgekit export: {args.model}", threads=args.threads))
    return _exit_code(records, args.strict)


def cmd_validate(args: argparse.Namespace) -> int:
    _quiet_backends()
    from . import registry
    from .console import console
    from .export import validate_artifact
    from .modeling import load_model, load_tokenizer
    from .record import ArtifactRecord

    path = Path(args.artifact)
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    sidecar = ArtifactRecord.sidecar_path(path)
    if not sidecar.is_file():
        raise UsageError(f"{path} has no record ({sidecar.name}); export it with `edgekit export` to get one")
    record = ArtifactRecord.load(path)
    source = args.model or record.source.get("source")
    if not source:
        raise UsageError(f"{sidecar.name} names no source model: pass --model PATH")
    if not args.model and source.startswith(("/", ".")) and not Path(source).exists():
        raise UsageError(f"the source model {source} is not on this machine: pass --model PATH")
    model = load_model(source, record.task, token_types=record.source.get("token_types", "auto")
                       if record.source.get("token_types") in ("fold", "keep") else "auto")
    try:
        tokenizer = load_tokenizer(source)
    except EdgekitError:
        tokenizer = None
    conv = registry.get(record.target)
    conv.require()
    from .precision import Precision

    tol = conv.tolerance(Precision(record.precision)).merged(**_tolerance_overrides(args))
    console.print(f"validating {path} ({record.target} {record.precision}) against {source}")
    validate_artifact(path, record, model, tokenizer, tol)
    record.save(path)
    console.print(f"{record.status.symbol} {record.status}" + (f": {record.reason}" if record.reason else ""))
    return _exit_code([record], args.strict)


def cmd_bench(args: argparse.Namespace) -> int:
    _quiet_backends()
    paths = [Path(p) for p in args.artifacts]
    if len(paths) == 1 and (paths[0] / "config.json").is_file():
        try:
            from . import crossbench
        except ImportError:
            raise UsageError("cross-format benchmarking of a model folder is not available in this build") from None
        return crossbench.run(args)
    for p in paths:
        if not p.exists():
            raise UsageError(f"{p} does not exist")
    from . import report

    records = _bench_records(paths, args.threads, args.runs, args.warmup)
    print(report.to_markdown(records, title="edgekit bench", threads=args.threads))
    return _exit_code(records, False)


def cmd_report(args: argparse.Namespace) -> int:
    from . import report

    folder = Path(args.dir)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder of exported artifacts")
    records = report.collect(folder)
    if not records:
        raise UsageError(f"no edgekit records (*.json sidecars) under {folder}")
    if args.format == "json":
        text = report.to_json(records)
    elif args.format == "html":
        try:
            from . import report_html
        except ImportError:
            raise UsageError("the HTML report is not available in this build") from None
        text = report_html.to_html(records)
    else:
        text = report.to_markdown(records, title=f"edgekit report: {folder}")
    if args.output:
        from .record import atomic_write_text

        atomic_write_text(Path(args.output), text)
    else:
        print(text, end="")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Export the embedded default model to every available target and precision, validate, bench, report."""
    _quiet_backends()
    from .console import console

    from .modeling import embedded_model_path

    model = str(embedded_model_path())
    out = Path(args.out)
    console.print(f"[bold]edgekit demo[/]: all-MiniLM-L6-v2 (embedded, {model}) → every available target → {out}")
    ns = argparse.Namespace(seq_len=args.seq_len, token_types="auto", no_validate=False, max_abs=None,
                            min_cosine=None, min_psnr=None, min_agreement=None)
    records = _export_many(ns, model, "feature-extraction", args.target, args.precision, out)
    records = _bench_records(_artifact_paths(out, records), args.threads, args.runs, args.warmup)
    md = _write_reports(out, records, threads=args.threads)
    print(md)
    console.print(f"reports: {out / 'report.md'}, {out / 'report.json'}"
                  + (f", {out / 'report.html'}" if (out / 'report.html').exists() else ""))
    return _exit_code(records, False)


# ---- parser -----------------------------------------------------------------------------------

def _add_tolerance_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("tolerance overrides (default: the target's declared tolerance per precision)")
    g.add_argument("--max-abs", type=float, help="largest allowed absolute difference")
    g.add_argument("--min-cosine", type=float, help="smallest allowed cosine similarity (worst sample)")
    g.add_argument("--min-psnr", type=float, help="smallest allowed PSNR in dB (worst sample)")
    g.add_argument("--min-agreement", type=float, help="smallest allowed task agreement, 0..1")


def _add_bench_args(p: argparse.ArgumentParser, runs: int = 20) -> None:
    p.add_argument("--threads", type=int, default=None, help="threads for every runtime (default: all cores)")
    p.add_argument("--runs", type=int, default=runs, help=f"timed runs (default {runs})")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up runs (default 3)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edgekit", description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("targets", help="list export targets, their precisions and whether they are installed")
    p.set_defaults(func=cmd_targets)

    p = sub.add_parser("export", help="export a model, validate each file and write its JSON record")
    p.add_argument("--model", required=True, help="local HF folder or Hugging Face id")
    p.add_argument("--task", help="masked-lm, feature-extraction, sequence-classification, question-answering, "
                                  "token-classification (default: from the checkpoint's config)")
    p.add_argument("--target", required=True, help="target name(s), comma-separated (see `edgekit targets`), or all")
    p.add_argument("--precision", default="fp32", help="fp32, fp16, int8 (the target's default int8), "
                                                       "int8-dynamic, int8-static, …; comma list or all")
    p.add_argument("--seq-len", help="128 (fixed), 128,256,384 (enumerated) or 16:512 (range); "
                                     "default 384 for question-answering, else 128")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--token-types", default="auto", choices=["auto", "fold", "keep"],
                   help="BERT token-type embeddings: fold type 0 into positions, or keep a token_type_ids input "
                        "(auto: keep for question-answering)")
    p.add_argument("--ane", action="store_true", help="coreml: Apple Neural Engine layout")
    p.add_argument("--deployment-target", help="coreml: minimum deployment target, e.g. iOS16 (default), iOS18")
    p.add_argument("--calibration", type=Path, help="int8-static: text file, one calibration sample per line")
    p.add_argument("--no-metadata", action="store_true", help="tflite: write no Task Library metadata")
    p.add_argument("--no-validate", action="store_true", help="skip parity (the record says validation-skipped)")
    p.add_argument("--bench", action="store_true", help="also measure latency against PyTorch eager fp32")
    p.add_argument("--strict", action="store_true", help="exit 1 when any validation was skipped")
    _add_bench_args(p)
    _add_tolerance_args(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("validate", help="re-run parity for an exported file against its source model")
    p.add_argument("artifact", help="an exported file (its .json record must sit beside it)")
    p.add_argument("--model", help="source model (default: the one named in the record)")
    p.add_argument("--strict", action="store_true", help="exit 1 when validation is skipped")
    _add_tolerance_args(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("bench", help="latency of exported files (or, given a model folder, the cross-format "
                                     "benchmark) against PyTorch eager fp32")
    p.add_argument("artifacts", nargs="+", help="exported files, or one model folder")
    p.add_argument("--seq-lens", default="128,384", help="model folder only: sequence lengths (default 128,384)")
    p.add_argument("--target", default="all", help="model folder only: targets (default all)")
    p.add_argument("--precision", default="all", help="model folder only: precisions (default all)")
    p.add_argument("--task", help="model folder only: task (default: from the checkpoint)")
    p.add_argument("--out", default=str(DEFAULT_OUT / "bench"), help="model folder only: output folder")
    p.add_argument("--skip", help="model folder only: targets to leave out, comma-separated")
    p.add_argument("--no-pin", dest="pin", action="store_false",
                   help="model folder only: do not pin the process to the first THREADS cores")
    _add_bench_args(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("report", help="one table of every artifact in a folder")
    p.add_argument("dir", help="folder with exported files and their .json records")
    p.add_argument("--format", default="md", choices=["md", "json", "html"])
    p.add_argument("--output", help="write to this file instead of stdout")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="export the embedded all-MiniLM-L6-v2 to every available target, "
                                    "validate, bench and report")
    p.add_argument("--out", default=str(DEFAULT_OUT / "demo"))
    p.add_argument("--target", default="all")
    p.add_argument("--precision", default="all")
    p.add_argument("--seq-len", default="128")
    _add_bench_args(p, runs=10)
    p.set_defaults(func=cmd_demo)

    for module in ("edgekit.distill.cli", "edgekit.bundle"):
        add = _optional_add_parser(module)
        if add is not None:
            add(sub)
    return parser


def _optional_add_parser(module: str) -> Callable[[Any], None] | None:
    import importlib
    import importlib.util

    try:
        if importlib.util.find_spec(module) is None:
            return None
    except ModuleNotFoundError:
        return None
    return getattr(importlib.import_module(module), "add_parser", None)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except EdgekitError as e:
        print(f"edgekit: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("edgekit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
