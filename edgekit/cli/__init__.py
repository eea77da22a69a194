"""``edgekit`` command line: a thin layer over the public API (``edgekit.api``) and the stages.

Each command turns its flags into typed options and calls one library function; no library code
sees an ``argparse.Namespace``. Exit codes: 0 ok, 1 parity/quality or export failed, 2 usage or
environment error.
"""
from __future__ import annotations

import argparse
import errno
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from edgekit.core.version import __version__
from edgekit.core.errors import EdgekitError, UsageError
from edgekit.core.precision import Precision
from edgekit.core.tasks import Task, infer_task
from edgekit.cli.vocabulary import plain, retired

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_STARTED = time.perf_counter()  # the demo's wall total counts from here (imports included)
DEFAULT_OUT = Path("edgekit-out")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 already; keep our prefix and hint
        self.print_usage(sys.stderr)
        raise UsageError(message)


# ---- helpers ----------------------------------------------------------------------------------

def _quiet_backends(out: Path | None = None) -> None:
    from edgekit.core.console import quiet_backends

    quiet_backends(out)


def _tolerance_overrides(args: argparse.Namespace) -> dict[str, float | None]:
    """The user's bound overrides, checked once (``edgekit.core.tolerance.check_overrides``)."""
    from edgekit.core.tolerance import check_overrides

    return check_overrides({"max_abs": args.max_abs, "min_cosine": args.min_cosine, "min_psnr": args.min_psnr,
                            "min_agreement": args.min_agreement})


def _gate(args: argparse.Namespace, task: Any = None) -> Any:
    """``--eval-data FILE [--max-f1-drop X] [--eval-n N]`` as the accuracy gate (None without
    ``--eval-data``); the data is read now, before any export (a bad file is a usage error)."""
    data = getattr(args, "eval_data", None)
    if data is None:
        if getattr(args, "max_f1_drop", None) is not None or getattr(args, "eval_n", None) is not None:
            raise UsageError("--max-f1-drop and --eval-n need --eval-data FILE")
        return None
    from edgekit.quality.gate import Gate, GateOptions

    options = GateOptions(Path(data), args.max_f1_drop, args.eval_n, getattr(args, "threads", None))
    if task is not None:
        options.check(task)
    return Gate(options)


def _exit_code(records: list[Any], strict: bool) -> int:
    from edgekit.core.record import Status

    bad = {Status.PARITY_FAILED, Status.EXPORT_FAILED} | ({Status.VALIDATION_SKIPPED} if strict else set())
    return EXIT_FAILED if any(r.status in bad for r in records) else EXIT_OK


def _task(name: str | None, model: str) -> str:
    """``--task`` (a name or an alias such as ``qa``: ``Task.parse``), else the checkpoint's own."""
    return Task.parse(name).value if name else infer_task(model)


def _seq_lens(text: str | None, task: str, several: bool = False) -> list[Any] | None:
    """``--seq-len``: one SeqLen, or (``several``, bench) comma-separated fixed lengths; None when
    the user named none, so each target uses its own default (``Converter.default_seq_len``)."""
    from edgekit.core.config import SeqLen

    if not text:
        return None
    if not several:
        return [SeqLen.parse(text)]
    try:
        values = list(dict.fromkeys(int(v) for v in text.replace(" ", "").split(",") if v))
    except ValueError:
        raise UsageError(f"--seq-len takes comma-separated lengths like 128,384 here, not {text!r}") from None
    if not values:
        raise UsageError("--seq-len needs at least one length")
    return [SeqLen.parse(v) for v in values]


def _target_flags() -> dict[str, Any]:
    """Every target's declared flags by name (the first declaration of a name wins)."""
    from edgekit.core import registry

    out: dict[str, Any] = {}
    for conv in registry.converters().values():
        for flag in conv.flags:
            out.setdefault(flag.name, flag)
    return out


def _add_target_flags(p: argparse.ArgumentParser) -> None:
    """The targets' own options: each converter declares its flags; the CLI only lists them."""
    g = p.add_argument_group("target options (declared by each target; see `edgekit targets`)")
    for flag in _target_flags().values():
        dest = f"flag_{flag.name}"
        if flag.kind == "value":
            g.add_argument(flag.cli, dest=dest, type=flag.type, default=None, metavar=flag.name.upper(), help=flag.help)
        else:
            g.add_argument(flag.cli, dest=dest, action="store_const", const=not flag.default, default=None,
                           help=flag.help)


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    """Target-specific options the user set (the ones left alone are not passed)."""
    return {name: getattr(args, f"flag_{name}") for name in _target_flags()
            if getattr(args, f"flag_{name}", None) is not None}


def _pipeline(args: argparse.Namespace, model_path: str, task: str, targets: str, precisions: str,
              seq_lens: list[Any] | None, out: Path, bench: bool, pin: bool = False, skip: str | None = None,
              title: str = "edgekit report", strict: bool | None = None, stage_times: bool = False,
              leave_out: tuple[Precision, ...] = ()) -> int:
    """plan -> export/validate -> (bench) -> reports: what export, demo and bench MODEL share.

    ``strict`` (default: the command's ``--strict``) makes a validation-skipped record exit 1.
    ``stage_times``: end the summary with the seconds each stage took (the demo's)."""
    started = time.perf_counter()
    from edgekit.build import plan as pipeline
    from edgekit.measure import tables as report
    from edgekit.measure.bench import bench_records
    from edgekit.core.console import console

    if bench:
        from edgekit.measure.bench import check_settings

        check_settings(args.threads, args.runs, args.warmup)  # before any export work starts
    gate = _gate(args, task)  # the accuracy gate's data is read before any export
    tolerance = _tolerance_overrides(args) if hasattr(args, "max_abs") else None
    from edgekit.model.preflight import check_out

    check_out(out)  # before the log file goes there: an unusable --out is a message, not a traceback
    _quiet_backends(out)
    token_types = getattr(args, "token_types", "auto")
    jobs = pipeline.plan(targets, precisions, seq_lens, task, token_types=token_types, flags=_flags(args),
                         calibration=getattr(args, "calibration", None), skip=skip, leave_out=leave_out)
    if jobs and all(j.skipped for j in jobs):
        for j in jobs:
            console.print(f"[yellow]skipping {j.label}[/]: {j.skipped}")
        raise UsageError("nothing to export: every target/precision was skipped (reasons above)")
    result = pipeline.run(jobs, model_path, task, out, token_types=token_types,
                          tolerance=tolerance, validate=not getattr(args, "no_validate", False), gate=gate,
                          arm64=_arm64(args), workers=getattr(args, "jobs", 1))
    records = result.records
    exported = time.perf_counter()
    if bench:
        records = bench_records(result.paths, args.threads, args.runs, args.warmup, pin=pin, models=result.models)
    benched = time.perf_counter()
    from edgekit.measure.render import write_reports

    rep = write_reports(out, title=title)
    print(report.markdown(report.build(records, title=title)), end="")
    if stage_times:
        print("\n" + _stage_times(result, exported - started, benched - exported) + "\n")
    console.print(f"reports: {out / 'report.md'}, {out / 'report.json'}, {out / 'report.html'} "
                  f"({len(rep.rows)} rows in the folder)")
    return _exit_code(records, getattr(args, "strict", False) if strict is None else strict)


def _stage_times(result: Any, export_s: float, bench_s: float) -> str:
    """The demo's closing line. One process: export = the converters' own seconds, validate = the
    rest of the export stage. Several: the stage's wall time, and the converters' seconds summed
    over the processes (which can exceed it: that is the point of running them side by side)."""
    convert = sum(r.export_seconds or 0 for r in result.records)
    total = f"total {time.perf_counter() - _STARTED:.1f} s since edgekit started"
    if result.workers > 1:
        return (f"Stage times: export + validate {export_s:.1f} s in {result.workers} processes "
                f"(converting {convert:.1f} s summed over them) · bench {bench_s:.1f} s · {total}")
    return (f"Stage times: export {convert:.1f} s · validate {export_s - convert:.1f} s (with loading the model) · "
            f"bench {bench_s:.1f} s · {total}")


# ---- commands ---------------------------------------------------------------------------------

def cmd_targets(args: argparse.Namespace) -> int:
    from edgekit.core import registry

    from edgekit.check.arm64 import unavailable

    print("| target | suffix | precisions | sequence lengths | flags | status | arm64 check (--arch arm64) |")
    print("|---|---|---|---|---|---|---|")
    for conv in registry.converters().values():
        missing = conv.missing_module()
        status = f"needs `pip install 'edgekit[{conv.extra}]'`" if missing else "available"
        second = conv.second_client_unavailable() if not missing else None
        if second:
            status += f"; second client not installed: {second}"
        flags = ", ".join(f.cli for f in conv.flags) or "—"
        arm = "—" if missing else (unavailable(conv.name) or "available")
        print(f"| {conv.name} | {conv.suffix} | {', '.join(p.value for p in conv.precisions)} "
              f"| {', '.join(conv.seq_kinds)} | {flags} | {status} | {arm} |")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    task = _task(args.task, args.model)
    # Skipped is not success: a file nobody could check fails export unless the user asked for no
    # validation (--no-validate) or accepts it (--allow-skipped).
    strict = args.strict or not (args.allow_skipped or args.no_validate)
    return _pipeline(args, args.model, task, args.target, args.precision, _seq_lens(args.seq_len, task),
                     Path(args.out), bench=args.bench, title=f"edgekit export: {args.model}", strict=strict)


def cmd_validate(args: argparse.Namespace) -> int:
    from edgekit.build.validate import validate

    tolerance = _tolerance_overrides(args)
    path = Path(args.artifact)
    gate = None
    if getattr(args, "eval_data", None) is not None or args.max_f1_drop is not None or args.eval_n is not None:
        from edgekit.core.record import ArtifactRecord

        task = ArtifactRecord.load(path).task if ArtifactRecord.sidecar_path(path).is_file() else None
        gate = _gate(args, task)
    _quiet_backends(path.parent)
    record = validate(path, args.model, tolerance=tolerance, rebind=args.rebind, gate=gate, arm64=_arm64(args))
    return _exit_code([record], args.strict)


def cmd_bench(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.artifacts]
    if len(paths) == 1 and (paths[0] / "config.json").is_file():
        model = str(paths[0])
        task = _task(args.task, model)
        out = Path(args.out)
        return _pipeline(args, model, task, args.target, args.precision, _seq_lens(args.seq_len, task, several=True),
                         out, bench=True, pin=args.pin, skip=args.skip, title=f"edgekit bench: {model}")
    from edgekit import api
    from edgekit.measure import tables as report

    records = api.bench(paths, threads=args.threads, runs=args.runs, warmup=args.warmup, pin=args.pin)
    print(report.markdown(report.build(records, title="edgekit bench")), end="")
    return _exit_code(records, False)


def cmd_report(args: argparse.Namespace) -> int:
    from edgekit.measure import tables as report

    folder = Path(args.dir)
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a folder of exported artifacts")
    from edgekit.build.install import recover

    recover(folder)
    records = report.collect(folder, check=True)
    if not records and not records.unreadable:
        raise UsageError(f"no edgekit records (*.json sidecars) under {folder}")
    from edgekit.measure.render import render

    rep = report.build(records, title=f"edgekit report: {folder}")
    text = render(rep, args.format)
    if args.output:
        from edgekit.core.record import atomic_write_text

        atomic_write_text(Path(args.output), text)
    else:
        print(text, end="")
    return EXIT_FAILED if rep.flagged else EXIT_OK  # a ❗ row: a record that cannot vouch for its file


#: Precisions the demo leaves out, and why (measured on all-MiniLM-L6-v2, the demo's model).
DEMO_LEFT_OUT = {
    Precision.PALETTIZE4: "4-bit palettes keep all-MiniLM-L6-v2 at a worst-sample embedding cosine of 0.86, "
                          "under the 0.95 an embedding app needs (benchmarks/results/coreml_compression.md)",
}


def cmd_demo(args: argparse.Namespace) -> int:
    """Export the embedded default model to every available target and precision, validate, bench, report."""
    from edgekit.core.console import console
    from edgekit.model.modeling import embedded_model_path

    model = str(embedded_model_path())
    out = Path(args.out)
    console.print(f"[bold]edgekit demo[/]: all-MiniLM-L6-v2 (embedded, {model}) → every available target → {out}")
    leave_out: tuple[Precision, ...] = ()
    if args.precision == "all":
        # The demo shows what an app can ship: a precision whose honest file cannot reach the
        # embedding app's floor on this model is left out by name, not exported to fail. Still a
        # sweep: with --target naming targets, each exports the precisions it has.
        for p, why in DEMO_LEFT_OUT.items():
            console.print(f"[yellow]not in the demo[/]: {p.value}: {why} (ask for it with --precision {p.value})")
        leave_out = tuple(DEMO_LEFT_OUT)
    return _pipeline(args, model, "feature-extraction", args.target, args.precision,
                     _seq_lens(args.seq_len, "feature-extraction"), out, bench=True,
                     title="edgekit demo: all-MiniLM-L6-v2", stage_times=True, leave_out=leave_out)


# ---- parser -----------------------------------------------------------------------------------

def _add_tolerance_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("tolerance overrides (default: the target's declared tolerance per precision)")
    g.add_argument("--max-abs", type=float, help="largest allowed absolute difference")
    g.add_argument("--min-cosine", type=float, help="smallest allowed cosine similarity (worst sample)")
    g.add_argument("--min-psnr", type=float, help="smallest allowed PSNR in dB (worst sample)")
    g.add_argument("--min-agreement", type=float, help="smallest allowed task agreement, 0..1")


def _add_arch_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the phone's CPU (ARM64 under emulation; `make arm64-env` sets it up)")
    g.add_argument("--arch", default="x86_64", choices=["x86_64", "arm64"],
                   help="arm64: also run parity in the file's aarch64 runtime under QEMU, on the same inputs and "
                        "bounds (TFLite and ONNX/ORT; other targets say 'arm64: not checked')")
    g.add_argument("--arm64-cpus", default=None,
                   help="QEMU CPU models for --arch arm64, comma-separated (default neoverse-n1,max)")


def _arm64(args: argparse.Namespace) -> tuple[str, ...] | None:
    """The CPU models to check on (None: x86 only)."""
    if getattr(args, "arch", "x86_64") != "arm64":
        if getattr(args, "arm64_cpus", None):
            raise UsageError("--arm64-cpus needs --arch arm64")
        return None
    from edgekit.check.arm64 import DEFAULT_CPUS

    cpus = tuple(c.strip() for c in (args.arm64_cpus or ",".join(DEFAULT_CPUS)).split(",") if c.strip())
    if not cpus:
        raise UsageError("--arm64-cpus needs at least one CPU model, e.g. neoverse-n1,max")
    return cpus


def _add_gate_args(p: argparse.ArgumentParser) -> None:
    """``--eval-data FILE [--max-f1-drop X] [--eval-n N]`` on export/validate."""
    g = p.add_argument_group("accuracy gate (task quality on real data, PyTorch vs the file on the same questions)")
    g.add_argument("--eval-data", help="SQuAD v1.1 JSON (.json/.json.xz) for question answering, or JSON lines "
                                       "{text, text_pair?, label} for sequence classification")
    g.add_argument("--max-f1-drop", type=float, default=None,
                   help="largest allowed drop in F1 (accuracy) points below PyTorch "
                        "(default: fp32 0.05, fp16 0.1, int8/palettized 1.0)")
    g.add_argument("--eval-n", type=int, default=None, help="gate on the first N questions only (default: all)")


def _add_verbose(p: argparse.ArgumentParser, log: str = "OUT/edgekit.log") -> None:
    """``--verbose``; ``log``: where this command keeps the libraries' output without it."""
    p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                   help=f"show the libraries' own logs and progress bars on stderr (default: into the log file {log})")


def _jobs_value(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of processes or auto") from None
    if n < 1:
        raise argparse.ArgumentTypeError("at least 1 process")
    return n


def _add_jobs_arg(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--jobs", type=_jobs_value, default=default if default == "auto" else int(default),
                   help="processes that export and check the files side by side, each taking whole targets "
                        f"(auto: the free cores, 1 with --eval-data; default {default})")


def _add_bench_args(p: argparse.ArgumentParser, runs: int = 20) -> None:
    p.add_argument("--threads", type=int, default=None,
                   help="threads for every runtime (default: the cores not busy with other work)")
    p.add_argument("--runs", type=int, default=runs, help=f"timed runs per file (default {runs})")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up runs per file before timing (default 3)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="edgekit", description=plain(__doc__.split("\n")[0]) if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"edgekit {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="show the libraries' own logs and progress bars on stderr (default: into a log file, "
                             "OUT/edgekit.log for commands with --out; each command's --help says where)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("targets", help="list export targets, their precisions and whether they are installed")
    p.set_defaults(func=cmd_targets)

    p = sub.add_parser("export", help="export a model, validate each file and write its JSON record")
    p.add_argument("--model", required=True, help="local HF folder or Hugging Face id")
    p.add_argument("--task", help="the model's task: masked-lm, feature-extraction, sequence-classification, "
                                  "question-answering, token-classification, or a short name (qa, seq-cls, token-cls, "
                                  "mlm, embedding) (default: from the checkpoint's config)")
    p.add_argument("--target", required=True, help="target name(s), comma-separated (see `edgekit targets`), or all")
    p.add_argument("--precision", default="fp32", help="precisions: fp32, fp16, int8 (the target's default int8), "
                                                       "int8-dynamic, int8-static, …; comma list or all (default fp32)")
    p.add_argument("--seq-len", help="sequence length in tokens: 128 (fixed), 128,256,384 (enumerated) or 16:512 "
                                     "(range) (default: the target's, 384 for question-answering, else 128)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--token-types", default="auto", choices=["auto", "fold", "keep"],
                   help="BERT token-type embeddings: fold type 0 into positions, or keep a token_type_ids input "
                        "(auto: keep for question-answering)")
    p.add_argument("--calibration", type=Path, help="int8-static: UTF-8 text file, one calibration sample per line "
                                                    "(at least 100 lines; the first 256 are used); for "
                                                    "question answering write question<TAB>context")
    p.add_argument("--no-validate", action="store_true", help="skip parity (the record says validation-skipped)")
    p.add_argument("--bench", action="store_true", help="also measure latency against PyTorch eager fp32")
    p.add_argument("--strict", action="store_true", help="exit 1 when any validation was skipped")
    p.add_argument("--allow-skipped", action="store_true",
                   help="exit 0 although a file could not be validated (e.g. an op the Core ML interpreter "
                        "does not implement); skipped is never passed")
    _add_bench_args(p)
    _add_jobs_arg(p, "1")
    _add_tolerance_args(p)
    _add_gate_args(p)
    _add_arch_args(p)
    _add_target_flags(p)
    _add_verbose(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("validate", help="re-run parity for an exported file against its source model")
    p.add_argument("artifact", help="an exported file (its .json record must sit beside it)")
    p.add_argument("--model", help="source model (default: the one named in the record)")
    p.add_argument("--strict", action="store_true", help="exit 1 when validation is skipped")
    p.add_argument("--rebind", action="store_true",
                   help="the file was changed on purpose: re-validate it and record its new size and sha256 "
                        "(its target and precision must still match its contents)")
    p.add_argument("--threads", type=int, default=None, help="threads for the accuracy gate's runtimes")
    _add_tolerance_args(p)
    _add_gate_args(p)
    _add_arch_args(p)
    _add_verbose(p, log="edgekit.log in the file's folder")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("bench", help="latency of exported files (or, given a model folder, export every target "
                                     "and precision and time them) against PyTorch eager fp32")
    p.add_argument("artifacts", nargs="+", help="exported files, or one model folder")
    g = p.add_argument_group("model folder only")
    g.add_argument("--seq-len", default="128,384",
                   help="sequence lengths in tokens, comma-separated fixed lengths, one file each (default 128,384)")
    retired(g, "--seq-lens", "--seq-len")
    g.add_argument("--target", default="all", help="targets, comma-separated (default all)")
    g.add_argument("--precision", default="all", help="precisions, comma-separated (default all)")
    g.add_argument("--task", help="the model's task, or a short name such as qa (default: from the checkpoint)")
    g.add_argument("--token-types", default="auto", choices=["auto", "fold", "keep"],
                   help="BERT token-type embeddings, as export (default auto)")
    g.add_argument("--out", default=str(DEFAULT_OUT / "bench"), help=f"output folder (default {DEFAULT_OUT / 'bench'})")
    g.add_argument("--skip", help="targets or target:precision items to leave out, comma-separated")
    p.add_argument("--no-pin", dest="pin", action="store_false",
                   help="do not pin the process to the first THREADS cores")
    _add_bench_args(p)
    _add_jobs_arg(p, "1")
    _add_verbose(p, log="OUT/edgekit.log; timing files: edgekit.log in the first file's folder")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("report", help="one table of every artifact in a folder")
    p.add_argument("dir", help="folder with exported files and their .json records")
    p.add_argument("--format", default="md", choices=["md", "json", "html"],
                   help="Markdown, JSON or a self-contained HTML page (default md)")
    p.add_argument("--output", help="write the report to this file instead of stdout")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="export the embedded all-MiniLM-L6-v2 to every available target, "
                                    "validate, bench and report")
    p.add_argument("--out", default=str(DEFAULT_OUT / "demo"),
                   help=f"output folder: files, records and reports (default {DEFAULT_OUT / 'demo'})")
    p.add_argument("--target", default="all", help="targets, comma-separated (default all: every installed one)")
    p.add_argument("--precision", default="all",
                   help="precisions, comma-separated (default all: every precision an app can ship on this model)")
    p.add_argument("--seq-len", default="128", help="sequence length in tokens, as export (default 128)")
    _add_bench_args(p, runs=10)
    _add_jobs_arg(p, "auto")
    _add_verbose(p)
    p.set_defaults(func=cmd_demo)

    for module in ("edgekit.cli.distill", "edgekit.cli.apps", "edgekit.cli.quality", "edgekit.cli.finetune",
                   "edgekit.cli.shrink"):
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


#: What the environment refused (exit 2, one line): a full disk, a quota, a read-only folder, no permission.
_ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "disk full (no space left on device): free some space or write elsewhere",
    errno.EDQUOT: "disk quota exceeded: free some space or write elsewhere",
    errno.EROFS: "read-only file system: write elsewhere",
    errno.EACCES: "permission denied: write elsewhere or fix the folder's permissions",
    errno.EPERM: "operation not permitted: write elsewhere or fix the folder's permissions",
}


def _environment_error(e: OSError) -> str | None:
    """One line for an OSError the user's environment caused (None: a bug, keep the traceback)."""
    what = _ENVIRONMENT_ERRNOS.get(e.errno or 0)
    if what is None:
        return None
    where = e.filename or getattr(e, "filename2", None)
    return f"{where}: {what}" if where else f"{what} ({e.strerror or e})"


def main(argv: list[str] | None = None) -> int:
    import logging

    # A log handler that cannot write (a full disk) must not print a traceback per message.
    logging.raiseExceptions = False
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        from edgekit.core.console import quiet_libraries

        quiet_libraries(getattr(args, "verbose", False))
        return int(args.func(args) or 0)
    except EdgekitError as e:
        print(f"edgekit: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:
        installed = getattr(e, "installed", None)  # edgekit.core.errors.InterruptedAfterInstall
        if installed:
            print(f"edgekit: interrupted after the new pair {installed} was installed (the file and its "
                  "record are complete and match); nothing after it ran", file=sys.stderr)
        else:
            print("edgekit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`edgekit report DIR | head`): end quietly, as other Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except OSError as e:
        message = _environment_error(e)
        if message is None:
            raise
        print(f"edgekit: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        from edgekit.core.console import reset

        reset()


if __name__ == "__main__":
    sys.exit(main())
