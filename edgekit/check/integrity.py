"""A file and its record are one thing: check that they still are.

A record names its file, size and sha256, and says which target and precision the file is. Each of
those is checked against the file itself: name, size and hash against the bytes; target against
the suffix *and* the format's own header (flatbuffer identifier, zip layout, protobuf, package
manifest); precision against what the file contains (weight dtypes, quantisation parameters,
quantised ops, palettes). A record that contradicts its file is an error (exit 1), never a reason to
pick a looser tolerance. :func:`self_contradictions` recomputes a record's verdict from its own
stored numbers and tolerance, so a hand-edited status shows up too.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from edgekit.core.errors import IntegrityError
from edgekit.core.record import ArtifactRecord, Status, sha256_of, size_of
from edgekit.core.target import Contents


def read_contents(path: Path, expected: str | None = None) -> Contents:
    """Identify ``path``'s format from its bytes (not its name) and what precision it holds: the
    target whose reader claims the bytes (``Converter.claims``) says what they are. ``expected``
    (the record's target) is asked first, so a target whose files share a container with another
    (a zip, a flatbuffer) is read by its own reader."""
    from edgekit.core import registry

    path = Path(path)
    head = b""
    if not path.is_dir():
        with open(path, "rb") as f:
            head = f.read(64)
    table = registry.converters()
    first = [table[expected]] if expected in table else []
    for conv in first + [c for c in table.values() if c.name != expected]:
        if conv.claims(path, head):
            return conv.inspect(path)
    if path.is_dir():
        raise IntegrityError(f"{path} is a folder but not an ML package (no Manifest.json)")
    raise IntegrityError(f"{path.name}: not a file format edgekit exports (header {head[:8]!r})")


# ---- checking a record against its file ------------------------------------------------------

def _suffix_of(target: str) -> str | None:
    from edgekit.core import registry

    try:
        return registry.get(target).suffix
    except Exception:  # noqa: BLE001 - an unknown target is reported by the caller's own check
        return None


def _family(target: str) -> str:
    """Targets whose files one reader cannot tell apart share a family (TorchScript and its Lite flavour)."""
    from edgekit.core import registry

    try:
        return registry.get(target).family
    except Exception:  # noqa: BLE001 - an unknown target is its own family
        return target


def _text(value: Any) -> str:
    """An enum member's value (a Precision, a Task), or the string itself."""
    return str(getattr(value, "value", value))


def file_problems(path: Path, record: ArtifactRecord, check_hash: bool = True, check_name: bool = True) -> list[str]:
    """Every way ``record`` disagrees with the file at ``path`` (empty: they are one thing).

    ``check_name=False``: a file renamed together with its record is accepted (``bundle`` ships it
    under the app's own name; the hash binds record and bytes)."""
    path = Path(path)
    out: list[str] = []
    if record.status == Status.EXPORT_FAILED:
        if path.exists():
            out.append(f"the record says export failed but {path.name} exists")
        return out
    if not path.exists():
        return [f"{path.name} is missing (its record says {record.status})"]
    if check_name and record.artifact != path.name:
        out.append(f"the record describes {record.artifact!r}, not {path.name!r}")
    size = size_of(path)
    if record.size_bytes != size:
        out.append(f"size: record {record.size_bytes} bytes, file {size} bytes")
    if check_hash:
        sha = sha256_of(path)
        if record.sha256 != sha:
            out.append(f"sha256: record {str(record.sha256)[:12]}…, file {sha[:12]}…")
    suffix = _suffix_of(record.target)
    if suffix and not path.name.endswith(suffix):
        out.append(f"the record says {record.target} ({suffix}) but the file is named {path.name}")
    try:
        c = read_contents(path, record.target)
    except IntegrityError as e:
        return out + [str(e)]
    precision = _text(record.precision)
    if _family(c.format) != _family(record.target):
        out.append(f"the record says {record.target} but the file is {c.format} ({c.evidence})")
    elif not c.allows(precision):
        out.append(f"the record says {precision} but the file holds "
                   f"{'/'.join(sorted(c.precisions or ()))} ({c.evidence})")
    return out


def self_contradictions(record: ArtifactRecord) -> list[str]:
    """Where a record's status disagrees with its own stored numbers and tolerance."""
    out: list[str] = []
    tol = record.tolerance or {}
    parity = record.parity or {}
    if not isinstance(parity, dict):  # a typed ParityReport
        parity = parity.to_dict()
    breaks = []
    for o in parity.get("outputs") or []:
        if tol.get("max_abs") is not None and not o.get("max_abs", float("inf")) <= tol["max_abs"]:
            breaks.append(f"{o.get('name')} max_abs {o.get('max_abs'):.3g} > {tol['max_abs']:.3g}")
        if tol.get("min_cosine") is not None and not o.get("cosine", float("-inf")) >= tol["min_cosine"]:
            breaks.append(f"{o.get('name')} cosine {o.get('cosine'):.6f} < {tol['min_cosine']}")
        if tol.get("min_psnr") is not None and not o.get("psnr", float("-inf")) >= tol["min_psnr"]:
            breaks.append(f"{o.get('name')} PSNR {o.get('psnr'):.1f} < {tol['min_psnr']}")
    agreement = parity.get("agreement")
    if tol.get("min_agreement") is not None and agreement is not None and not agreement >= tol["min_agreement"]:
        breaks.append(f"agreement {agreement:.1%} < {tol['min_agreement']:.0%}")
    arm = record.arm64 or {}
    arm_failed = [cpu for cpu, r in (arm.get("cpus") or {}).items() if not r.get("passed")]
    if record.status == Status.VALIDATED and arm_failed:
        out.append(f"status validated but its arm64 parity failed on {', '.join(arm_failed)}")
    if record.status == Status.VALIDATED:
        if not parity.get("outputs"):
            out.append("status validated but the record holds no parity numbers")
        elif parity.get("passed") is False:
            out.append("status validated but its parity report says failed")
        out += [f"status validated but {b}" for b in breaks]
    if record.status != Status.EXPORT_FAILED and not record.sha256:
        out.append("the record has no sha256")
    return out


def problems(path: Path, record: ArtifactRecord, check_hash: bool = True, check_name: bool = True) -> list[str]:
    """File and self contradictions together."""
    return file_problems(path, record, check_hash, check_name) + self_contradictions(record)


def check(path: Path, record: ArtifactRecord, what: str = "") -> None:
    """Raise :class:`IntegrityError` (exit 1) listing every contradiction between ``record`` and ``path``."""
    found = problems(path, record)
    if found:
        sidecar = ArtifactRecord.sidecar_path(Path(path)).name
        lead = f"{Path(path).name} and its record {sidecar} disagree"
        raise IntegrityError(lead + (f" ({what})" if what else "") + ":\n  - " + "\n  - ".join(found)
                             + "\nRe-export it, or if the file was changed on purpose: edgekit validate "
                               f"{path} --rebind")
