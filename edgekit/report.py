"""The cross-format report: one row per artifact, read from the JSON sidecars in a folder."""
from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from .precision import Precision
from .record import ArtifactRecord, Status

TARGET_ORDER = ["torchscript", "torchscript-lite", "executorch", "coreml", "tflite", "onnx", "ort"]
PRECISION_ORDER = [p.value for p in Precision]


def collect(folder: Path) -> list[ArtifactRecord]:
    """Every record under ``folder``, in table order (target, precision, then name)."""
    records = []
    for path in sorted(Path(folder).rglob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and {"artifact", "target", "status"} <= data.keys():
            records.append(ArtifactRecord.from_dict(data))
    return sorted(records, key=_order)


def _order(r: ArtifactRecord) -> tuple[Any, ...]:
    t = TARGET_ORDER.index(r.target) if r.target in TARGET_ORDER else len(TARGET_ORDER)
    p = PRECISION_ORDER.index(r.precision) if r.precision in PRECISION_ORDER else len(PRECISION_ORDER)
    return (r.task, r.seq_len, t, r.target, p, r.artifact)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int | None = None) -> dict[str, Any]:
    from .bench import default_threads

    cores = default_threads()  # the cores this process may run on
    return {"os": f"{platform.system()} {platform.release()}", "machine": platform.machine(), "cpu": cpu_name(),
            "cores": cores, "threads": threads, "python": platform.python_version()}


def row(r: ArtifactRecord, fp32_sizes: dict[tuple[str, str, str, str], int]) -> dict[str, Any]:
    """The numbers one table row shows (also what the JSON and HTML reports use)."""
    parity = r.parity or {}
    outs = parity.get("outputs") or []
    lat = r.latency or {}
    base = fp32_sizes.get((r.target, r.task, r.seq_len, r.source.get("source", ""))) or r.source.get("fp32_param_bytes")
    return {
        "artifact": r.artifact, "target": r.target, "precision": r.precision, "task": r.task, "seq_len": r.seq_len,
        "status": r.status.value, "symbol": r.status.symbol, "reason": r.reason,
        "size_mb": r.size_bytes / 1e6 if r.size_bytes else None,
        "size_pct_fp32": 100.0 * r.size_bytes / base if r.size_bytes and base else None,
        "max_abs": max((o["max_abs"] for o in outs), default=None),
        "cosine": min((o["cosine"] for o in outs), default=None),
        "psnr": min((o["psnr"] for o in outs), default=None),
        "agreement": parity.get("agreement"),
        "agreement_metric": parity.get("agreement_metric"),
        "p50_ms": lat.get("p50_ms"), "p90_ms": lat.get("p90_ms"), "threads": lat.get("threads"),
        "eager_p50_ms": lat.get("eager_p50_ms"),
        "speedup": (lat["eager_p50_ms"] / lat["p50_ms"]) if lat.get("eager_p50_ms") and lat.get("p50_ms") else None,
        "versions": r.versions,
        # A second client's verdict on the same file (TFLite: the Task Library), when there is one.
        "second_client": r.options.get("task_library"),
    }


def rows(records: list[ArtifactRecord]) -> list[dict[str, Any]]:
    fp32 = {(r.target, r.task, r.seq_len, r.source.get("source", "")): r.size_bytes
            for r in records if r.precision == "fp32" and r.size_bytes and not r.options.get("ane")}
    return [row(r, fp32) for r in records]


def _fmt(v: Any, spec: str, none: str = "—") -> str:
    return none if v is None else format(v, spec)


def to_markdown(records: list[ArtifactRecord], title: str = "edgekit report", threads: int | None = None) -> str:
    """A Markdown table; status legend: ✅ validated, ❎ parity failed, ❌ export failed, ⚠️ skipped."""
    info = machine_info(threads)
    versions: dict[str, str] = {}
    for r in records:
        versions.update(r.versions)
    lines = [
        f"# {title}", "",
        f"Machine: {info['cpu']} ({info['cores']} cores, {info['os']}); "
        f"threads: {threads or _common_threads(records) or '—'}; "
        + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())), "",
        "| | target | precision | task | seq | size MB | % fp32 | max abs | cosine | PSNR dB | agreement "
        "| p50 ms | p90 ms | × eager |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes: list[str] = []
    clients: list[str] = []
    for d in rows(records):
        lines.append(
            f"| {d['symbol']} | {d['target']} | {d['precision']} | {d['task']} | {d['seq_len']} "
            f"| {_fmt(d['size_mb'], '.1f')} | {_fmt(d['size_pct_fp32'], '.0f')} "
            f"| {_fmt(d['max_abs'], '.2g')} | {_fmt(d['cosine'], '.5f')} | {_fmt(d['psnr'], '.1f')} "
            f"| {_fmt(d['agreement'] and 100 * d['agreement'], '.1f')}{'%' if d['agreement'] is not None else ''} "
            f"| {_fmt(d['p50_ms'], '.1f')} | {_fmt(d['p90_ms'], '.1f')} | {_fmt(d['speedup'], '.2f')} |"
        )
        if d["status"] != Status.VALIDATED.value and d["reason"]:
            notes.append(f"- {d['symbol']} `{d['artifact']}` ({d['status']}): {d['reason']}")
        second = d["second_client"]
        if second:
            detail = f"{second['agreement']:.0%} agreement" if second.get("agreement") is not None else second.get("reason")
            clients.append(f"- `{d['artifact']}`: {second.get('client')}: {second.get('status')} ({detail})")
    lines += ["", "✅ validated · ❎ exported, parity failed · ❌ export failed · ⚠️ exported, validation skipped"]
    if any(r.latency for r in records):
        lines.append("× eager: PyTorch eager fp32 p50 ÷ artifact p50, both measured in the same run.")
    if notes:
        lines += ["", "Not validated:", *notes]
    if clients:
        lines += ["", "Second client (the runtime apps use):", *clients]
    return "\n".join(lines) + "\n"


def _common_threads(records: list[ArtifactRecord]) -> int | None:
    threads = {r.latency.get("threads") for r in records if r.latency}
    return threads.pop() if len(threads) == 1 else None


def to_json(records: list[ArtifactRecord], threads: int | None = None) -> str:
    return json.dumps({"machine": machine_info(threads or _common_threads(records)), "rows": rows(records)},
                      indent=2, default=str) + "\n"
