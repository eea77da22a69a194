"""The cross-format benchmark behind ``edgekit bench MODEL``.

For every sequence length: measure PyTorch eager fp32 (the baseline), then export every chosen
target x precision at that fixed length, validate it against PyTorch, and time it in its own
runtime, all in one process with one pinned thread count. Results are the usual artifact sidecars
(with ``latency`` filled in, including the eager baseline and the speed-up over it) plus
``crossbench.json`` (host, threads, versions, baselines, combinations that could not run), and
the report (Markdown, JSON, HTML) written next to them.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from .errors import EdgekitError, UsageError
from .report import cpu_name
from .tasks import infer_task

DEFAULT_SEQ_LENS = (128, 384)
SUMMARY_NAME = "crossbench.json"

#: Backends whose versions the report header lists (distribution names; absent ones are skipped).
VERSION_PACKAGES = ("torch", "transformers", "onnx", "onnxruntime", "ai-edge-litert", "litert-torch",
                    "executorch", "coremltools", "numpy")


@dataclass
class Combination:
    """One target x precision x length the benchmark tried, and what became of it."""

    target: str
    precision: str
    seq_len: int
    artifact: str | None = None   # sidecar-relative path of the artifact, when one was written
    skipped: str | None = None    # why no export was attempted (missing backend, unsupported option)
    bench_skipped: str | None = None  # why the artifact was not timed


@dataclass
class CrossBenchResult:
    out_dir: Path
    host: dict[str, Any]
    model: dict[str, Any] = field(default_factory=dict)
    baselines: dict[int, dict[str, Any]] = field(default_factory=dict)  # seq -> eager fp32 latency
    combinations: list[Combination] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "model": self.model,
            "baselines": {str(k): v for k, v in self.baselines.items()},
            "combinations": [vars(c) for c in self.combinations],
        }


# ---- host description --------------------------------------------------------------------------

def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in VERSION_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    from . import __version__

    out["edgekit"] = __version__
    return out


def host_info(threads: int, pinned: list[int] | None) -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, threads, load, library versions."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "machine": f"{platform.system()} {platform.machine()}",
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "threads": threads,
        "pinned_cpus": pinned,
        "load_average": [round(x, 2) for x in load] if load else None,
        "versions": library_versions(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


@contextlib.contextmanager
def pinned_cpus(threads: int, pin: bool) -> Iterator[list[int] | None]:
    """Restrict the process to ``threads`` CPUs (when asked and possible); restore afterwards."""
    if not pin or not hasattr(os, "sched_setaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    cpus = sorted(before)[:threads]
    os.sched_setaffinity(0, cpus)
    try:
        yield cpus
    finally:
        os.sched_setaffinity(0, before)


def model_summary(model: Any) -> dict[str, Any]:
    """What was benchmarked, including the fp32 weight bytes the eager baseline row shows as its size."""
    info = model.info
    return {
        "source": info.source, "arch": info.arch, "task": info.task, "num_layers": info.num_layers,
        "hidden_size": info.hidden_size, "vocab_size": info.vocab_size,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "fp32_bytes": int(sum(p.numel() * 4 for p in model.parameters())),
    }


# ---- what to run --------------------------------------------------------------------------------

def available_targets(names: list[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """Targets to run (all registered ones by default) and, for the rest, why they cannot run here."""
    from . import registry

    table = registry.converters()
    chosen = list(table) if not names else [registry.get(n).name for n in names]
    missing = {}
    for name in chosen:
        mod = table[name].missing_module()
        if mod is not None:
            missing[name] = f"backend not installed (no module {mod!r}): pip install 'edgekit[{table[name].extra}]'"
    return [n for n in chosen if n not in missing], missing


def bench_unavailable(target: str) -> str | None:
    """Why an artifact's runner is not its real runtime on this host (so timing it means nothing)."""
    from . import registry

    return registry.get(target).benchmark_unavailable()


def parse_seq_lens(text: str | list[int] | tuple[int, ...]) -> tuple[int, ...]:
    if not isinstance(text, str):
        vals = tuple(int(v) for v in text)
    else:
        try:
            vals = tuple(int(v) for v in text.replace(" ", "").split(",") if v)
        except ValueError:
            raise UsageError(f"--seq-lens takes comma-separated lengths like 128,384, not {text!r}") from None
    if not vals or any(v < 2 for v in vals):
        raise UsageError(f"--seq-lens needs lengths >= 2, got {text!r}")
    return tuple(dict.fromkeys(vals))


# ---- the benchmark ------------------------------------------------------------------------------

def run_crossbench(
    model: Any, out_dir: Path, tokenizer: Any = None, targets: list[str] | None = None,
    precisions: list[str] | None = None, seq_lens: tuple[int, ...] = DEFAULT_SEQ_LENS,
    threads: int | None = None, runs: int = 20, warmup: int = 3, pin: bool = True, verbose: bool = True,
    skip: list[str] | None = None,
) -> CrossBenchResult:
    """Export, validate and time every target x precision x length for an already loaded ``EdgeModel``.

    ``precisions``: names (``fp32``, ``int8`` ...); each target runs the ones it supports. None:
    every precision of every target. ``skip``: ``target`` or ``target:precision`` items to leave
    out (listed in the report as skipped). Returns the result and writes sidecars,
    ``crossbench.json`` and the report into ``out_dir``.
    """
    from . import registry
    from .bench import default_threads, set_torch_threads
    from .config import ExportOptions, SeqLen
    from .console import console
    from .export import bench_artifact, bench_eager, export_model
    from .precision import Precision
    from .record import Status

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    threads = threads or default_threads()
    if threads < 1:
        raise UsageError("--threads must be at least 1")
    if max(seq_lens) > model.config.max_positions:
        raise UsageError(f"the model has {model.config.max_positions} positions; choose --seq-lens up to that")
    names, missing = available_targets(targets)
    plan: list[tuple[str, Precision]] = []
    result_combos: list[Combination] = []
    for name in names:
        conv = registry.get(name)
        wanted = conv.precisions if not precisions else Precision.select(precisions, conv.precisions, True)
        plan += [(name, p) for p in wanted]
    skipped = {s.strip() for s in skip or [] if s.strip()}
    unknown = {s for s in skipped if s.split(":")[0] not in registry.converters()}
    if unknown:
        raise UsageError(f"--skip names unknown targets: {sorted(unknown)} (use target or target:precision)")

    with pinned_cpus(threads, pin) as cpus:
        set_torch_threads(threads)
        result = CrossBenchResult(out_dir, host_info(threads, cpus), model=model_summary(model))
        for seq in seq_lens:
            for name in missing:
                result_combos.append(Combination(name, "-", seq, skipped=missing[name]))
            if verbose:
                console.rule(f"seq {seq}: PyTorch eager fp32 baseline ({threads} threads)")
            eager = bench_eager(model, seq, threads=threads, runs=runs, warmup=warmup)
            result.baselines[seq] = eager
            if verbose:
                console.print(f"    eager fp32: p50 {eager['p50_ms']:.1f} ms, p90 {eager['p90_ms']:.1f} ms")
            sub = out_dir / f"s{seq}"
            for i, (name, precision) in enumerate(plan, 1):
                combo = Combination(name, precision.value, seq)
                result_combos.append(combo)
                if name in skipped or f"{name}:{precision.value}" in skipped:
                    combo.skipped = "left out of this run (--skip)"
                    continue
                if verbose:
                    console.rule(f"seq {seq} [{i}/{len(plan)}] {name} {precision}")
                options = ExportOptions(target=name, task=model.task, precision=precision, seq_len=SeqLen.parse(seq))
                try:
                    record = export_model(model, options, sub, tokenizer=tokenizer, verbose=verbose)
                except EdgekitError as e:  # this combination cannot be made here; the others still run
                    combo.skipped = str(e)
                    if verbose:
                        console.print(f"    [yellow]- skipped[/]: {e}")
                    continue
                path = sub / record.artifact
                combo.artifact = str(path.relative_to(out_dir))
                if record.status == Status.EXPORT_FAILED or not path.exists():
                    continue
                combo.bench_skipped = bench_unavailable(name)
                if combo.bench_skipped is None and record.status == Status.VALIDATION_SKIPPED:
                    combo.bench_skipped = f"not validated ({record.reason}); not timed"
                if combo.bench_skipped:
                    continue
                try:
                    lat = bench_artifact(path, record, threads=threads, runs=runs, warmup=warmup, seq=seq)
                except EdgekitError as e:
                    combo.bench_skipped = str(e)
                    continue
                except Exception as e:  # noqa: BLE001 - a runtime crash while timing is a result
                    combo.bench_skipped = f"runtime error while timing: {type(e).__name__}: {e}"
                    continue
                lat["eager_p50_ms"] = eager["p50_ms"]
                lat["eager_p90_ms"] = eager["p90_ms"]
                lat["speedup_vs_eager"] = eager["p50_ms"] / lat["p50_ms"] if lat["p50_ms"] > 0 else None
                lat["load_average"] = result.host["load_average"]
                record.latency = lat
                record.source["fp32_param_bytes"] = result.model["fp32_bytes"]  # the "% of fp32" base
                record.save(path)
                if verbose:
                    console.print(f"    ⏱  p50 {lat['p50_ms']:.1f} ms, p90 {lat['p90_ms']:.1f} ms, "
                                  f"{lat['speedup_vs_eager']:.2f}x eager")
        # The load at the end says more about noise than the load at the start.
        result.host["load_average_end"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    result.combinations = result_combos
    from .record import atomic_write_text

    atomic_write_text(out_dir / SUMMARY_NAME, json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    write_reports(out_dir)
    return result


def write_reports(out_dir: Path) -> dict[str, Path]:
    """Markdown, JSON and HTML reports of a benchmark folder; returns their paths."""
    from . import report_html
    from .record import atomic_write_text

    data = report_html.collect(out_dir)
    paths = {"md": out_dir / "report.md", "json": out_dir / "report.json", "html": out_dir / "report.html"}
    atomic_write_text(paths["md"], report_html.render_markdown(data))
    atomic_write_text(paths["json"], json.dumps(data, indent=2, default=str) + "\n")
    atomic_write_text(paths["html"], report_html.render_html(data))
    return paths


# ---- CLI ---------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``edgekit bench MODEL``."""
    parser.add_argument("model", help="Hugging Face model folder (BERT or DistilBERT) or hub id")
    parser.add_argument("--task", default=None,
                        help="task to export (default: read from the checkpoint's config, else feature-extraction)")
    parser.add_argument("--targets", default=None, help="comma-separated targets (default: every installed target)")
    parser.add_argument("--precisions", default=None,
                        help="comma-separated precisions, e.g. fp32,int8 (default: all each target supports)")
    parser.add_argument("--seq-lens", default=",".join(map(str, DEFAULT_SEQ_LENS)),
                        help="comma-separated sequence lengths, batch 1 (default: 128,384)")
    parser.add_argument("--threads", type=int, default=None, help="threads for every runtime (default: all cores)")
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="do not restrict the process to --threads CPUs")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per artifact (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up runs (default 3)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: bench-<model name>)")
    parser.add_argument("--token-types", default="auto", choices=("auto", "fold", "keep"))
    parser.add_argument("--skip", default=None, help="comma-separated target or target:precision items to leave out")


def _names(value: Any) -> list[str] | None:
    """``"a,b"`` or ``["a,b", "c"]`` -> ["a", "b", "c"]; ``all``/empty -> None (everything)."""
    if not value:
        return None
    items = [v for part in ([value] if isinstance(value, str) else value) for v in str(part).split(",") if v]
    return None if not items or items == ["all"] else items


def run(args: argparse.Namespace) -> int:
    """``edgekit bench MODEL``: 0 unless an artifact failed to export or failed parity (then 1).

    Accepts this module's ``add_arguments`` namespace and the CLI's ``bench`` one (``artifacts``,
    ``target``, ``precision``).
    """
    from .console import console
    from .export import model_stem
    from .modeling import load_model, load_tokenizer
    from .record import Status

    model_path = getattr(args, "model", None) or args.artifacts[0]
    task = getattr(args, "task", None) or infer_task(str(model_path))
    runs, warmup = getattr(args, "runs", 20), getattr(args, "warmup", 3)
    if runs < 1 or warmup < 0:
        raise UsageError("--runs must be >= 1 and --warmup >= 0")
    seq_lens = parse_seq_lens(getattr(args, "seq_lens", None) or ",".join(map(str, DEFAULT_SEQ_LENS)))
    model = load_model(model_path, task, token_types=getattr(args, "token_types", "auto") or "auto")
    try:
        tokenizer = load_tokenizer(model_path)
    except EdgekitError:
        tokenizer = None  # parity then uses random tokens only
    out = Path(args.out) if getattr(args, "out", None) else Path(f"bench-{model_stem(str(model_path))}")
    result = run_crossbench(
        model, out, tokenizer=tokenizer,
        targets=_names(getattr(args, "targets", None) or getattr(args, "target", None)),
        precisions=_names(getattr(args, "precisions", None) or getattr(args, "precision", None)),
        seq_lens=seq_lens, threads=getattr(args, "threads", None), runs=runs, warmup=warmup,
        pin=getattr(args, "pin", True), skip=_names(getattr(args, "skip", None)),
    )
    from . import report_html

    data = report_html.collect(out)
    print(report_html.render_markdown(data))
    console.print(f"reports: {out / 'report.md'}, {out / 'report.json'}, {out / 'report.html'}")
    if not result.combinations or all(c.skipped for c in result.combinations):
        console.print("[red]nothing was exported: every target/precision was skipped (see the report)[/]")
        return 1
    bad = {Status.EXPORT_FAILED.value, Status.PARITY_FAILED.value}
    return 1 if any(r["status"] in bad for r in data["rows"]) else 0
