"""Which architecture ``edgekit bundle`` computes golden outputs on.

The apps replay golden.json on the phone, an arm64 device. When the target's runtime has an aarch64
build in the ARM64 emulation environment (``make arm64-env``: LiteRT for the Android app's TFLite
files), the model and QA outputs come from that runtime under QEMU on one CPU model (default
``neoverse-n1``, a phone core) after the emulator passed its self-test on that model; the x86
outputs are computed too, and the two must agree within the bounds the apps apply (else the bundle
is refused: a real finding). Without the environment, ``auto`` computes them on x86 and says so;
``arm64`` asked for by name is an environment error (exit 2). golden.json's ``model.computed_on``
records where they came from.

One code path: every output a golden section holds goes through a :class:`Recorder` (x86) or a
:class:`Replay` (the same feeds, computed in one emulated process); the sections are then built
from that function exactly as they are on x86.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgekit.core.errors import UsageError, ValidationError

#: ``--golden-arch``: ``auto`` = arm64 when the environment is there, else x86_64 (said, and recorded).
ARCHES = ("auto", "arm64", "x86_64")

LogitsFn = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _key(ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> bytes:
    return b"|".join(np.ascontiguousarray(np.asarray(a, dtype=np.int32)).tobytes() + str(np.shape(a)).encode()
                     for a in (ids, mask, types))


class Recorder:
    """A logits function that runs ``run`` once per distinct feed and keeps every feed and output."""

    def __init__(self, run: LogitsFn) -> None:
        self._run = run
        self.feeds: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.outputs: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = _key(ids, mask, types)
        if key not in self.outputs:
            start, end = self._run(ids, mask, types)
            self.feeds[key] = (np.asarray(ids).copy(), np.asarray(mask).copy(), np.asarray(types).copy())
            self.outputs[key] = (np.asarray(start, dtype=np.float32).copy(), np.asarray(end, dtype=np.float32).copy())
        return self.outputs[key]


class Replay:
    """A logits function that answers with outputs computed elsewhere for the same feeds."""

    def __init__(self, outputs: dict[bytes, tuple[np.ndarray, np.ndarray]], where: str) -> None:
        self.outputs = outputs
        self.where = where

    def __call__(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        try:
            return self.outputs[_key(ids, mask, types)]
        except KeyError:  # the sections are built from the same inputs twice: a new one is a bug here
            raise RuntimeError(f"a golden input was not computed on {self.where}") from None


@dataclass
class GoldenPlace:
    """Where the golden outputs are computed: ``arch`` ``arm64`` (``cpu``, the target's aarch64
    runtime module ``module``) or ``x86_64`` (``why``: the reason it is not arm64)."""

    arch: str
    cpu: str | None = None
    why: str | None = None
    module: Any = field(default=None, repr=False)


def x86_runtime(target: str) -> str:
    """The x86 runtime that runs ``target``'s files in Python, with its version."""
    from importlib import metadata

    from edgekit.core import registry

    mod = registry.get(target).arm64()
    dist = getattr(mod, "RUNTIME", None)
    if dist:
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            return dist
    if target == "coreml":
        return "edgekit's Core ML (MIL) interpreter"
    return f"the {target} runner"


def resolve(target: str, arch: str, cpu: str | None) -> GoldenPlace:
    """Decide where golden outputs are computed, before any work (reads files only).

    ``arch`` ``auto`` falls back to x86_64 with the reason when the target's runtime has no aarch64
    build or the environment is missing; ``arm64`` (or a ``cpu`` named) without it raises: a
    :class:`UsageError` for a target that has no aarch64 runtime at all, an ``EmulatorError``
    (exit 2, "run `make arm64-env`") for a missing or unverified environment."""
    from edgekit import emulation
    from edgekit.core import registry

    if arch not in ARCHES:
        raise UsageError(f"--golden-arch {arch!r}: choose one of {', '.join(ARCHES)}")
    if arch == "x86_64":
        if cpu:
            raise UsageError("--golden-cpu needs --golden-arch arm64 (or auto)")
        return GoldenPlace("x86_64", why="--golden-arch x86_64")
    wanted = arch == "arm64" or bool(cpu)
    conv = registry.get(target)
    mod = conv.arm64()
    if mod is None:
        why = f"{target} files: {conv.arm64_missing}"
        if wanted:
            raise UsageError(f"--golden-arch arm64: {why}; use --golden-arch x86_64")
        return GoldenPlace("x86_64", why=why)
    cpu = cpu or emulation.DEFAULT_CPU
    reason = emulation.available(runtime=mod.RUNTIME, cpu=cpu)
    if reason:
        if wanted:
            fix = "" if "make arm64-env" in reason else "; run `make arm64-env`"
            raise emulation.EmulatorError(
                f"--golden-arch arm64 (CPU model {cpu}) needs the ARM64 emulation environment: {reason}{fix}; "
                f"or bundle with --golden-arch x86_64")
        return GoldenPlace("x86_64", why=reason)
    return GoldenPlace("arm64", cpu=cpu, module=mod)


def run_on_arm64(place: GoldenPlace, path: Any, record: Any, recorder: Recorder,
                 say: Callable[[str], None] = lambda s: None) -> tuple[Replay, dict[str, Any]]:
    """The emulator proves itself on ``place.cpu`` (``check.arm64.self_test``), then every feed the
    recorder saw runs through the shipped file in the aarch64 runtime, in one emulated process.
    Returns a :class:`Replay` of those outputs and the ``computed_on`` record."""
    import time

    from edgekit.check import arm64 as check_arm64

    mod, cpu = place.module, place.cpu
    t0 = time.perf_counter()
    earlier = not check_arm64.self_test(mod.RUNTIME, (cpu,))
    proven = "earlier in this process" if earlier else f"in {time.perf_counter() - t0:.1f} s"
    keys = list(recorder.feeds)
    feeds = [{"input_ids": f[0], "attention_mask": f[1], "token_type_ids": f[2]} for f in (recorder.feeds[k] for k in keys)]
    lengths = sorted({int(np.shape(f["input_ids"])[-1]) for f in feeds})
    say(f"golden: {len(feeds)} window(s) of {', '.join(map(str, lengths))} tokens on arm64 ({cpu}, "
        f"{mod.RUNTIME} under QEMU; the emulator's self-test passed {proven})")
    run = mod.run_file(path, record, feeds, cpu=cpu)
    outputs = {}
    for k, out in zip(keys, run.outputs):
        outputs[k] = (np.asarray(out["start_logits"], dtype=np.float32), np.asarray(out["end_logits"], dtype=np.float32))
    runtime = f"{run.meta.get('runtime', mod.RUNTIME)} {run.meta.get('version', '')}".strip()
    computed_on = {"arch": "arm64", "cpu": cpu, "qemu": run.qemu_version, "runtime": runtime, "windows": len(feeds)}
    say(f"golden: arm64 ({cpu}, QEMU {run.qemu_version}, {runtime}) computed them in {run.wall_seconds:.1f} s")
    return Replay(outputs, f"arm64 {cpu}"), computed_on


def compare_architectures(bounds: dict[str, float], x86: Recorder, arm: Replay, x86_cases: Sequence[dict[str, Any]],
                          arm_cases: Sequence[dict[str, Any]], x86_qa: Sequence[dict[str, Any]],
                          arm_qa: Sequence[dict[str, Any]]) -> tuple[list[str], dict[str, Any]]:
    """x86 treated as one more device replaying the arm64 golden file, under the bounds the apps
    apply: every window's values (real tokens), the model cases' decisive best spans, and each QA
    case's answer (exact on decisive cases, within the top-k otherwise). Returns what failed and the
    worst differences measured."""
    from edgekit.apps import golden
    from edgekit.check.parity import cosine

    fails: list[str] = []
    worst_abs, worst_cos = 0.0, 1.0
    for n, (key, (ids, mask, _)) in enumerate(x86.feeds.items()):
        got = dict(zip(("start_logits", "end_logits"), x86.outputs[key]))
        want = dict(zip(("start_logits", "end_logits"), arm.outputs[key]))
        real = np.asarray(mask).reshape(-1) == 1
        case = {"attention_mask": real.astype(int).tolist(), "outputs": {k: v.reshape(-1) for k, v in want.items()}}
        fails += [f"window {n} ({real.size} tokens): {f}" for f in golden.check_model_case(bounds, case, got)]
        for k in want:
            a, e = got[k].reshape(-1)[real].astype(np.float64), want[k].reshape(-1)[real].astype(np.float64)
            worst_abs = max(worst_abs, float(np.abs(a - e).max()) if a.size else 0.0)
            worst_cos = min(worst_cos, cosine(e, a))
    gots = [{k: np.asarray(v) for k, v in c["outputs"].items()} for c in x86_cases]
    agreement = {k: v for k, v in bounds.items() if k == "min_agreement"}  # values: checked per window above
    fails += [f"model cases: {f}" for f in golden.check_model_cases(agreement, arm_cases, gots)]
    for want, got in zip(arm_qa, x86_qa):
        f = golden.check_qa_case(want, got["answers"])
        if f:
            fails.append(f)
    return fails, {"max_abs": worst_abs, "cosine": worst_cos}


def refuse_disagreement(fails: Sequence[str], computed_on: dict[str, Any], path_name: str) -> None:
    raise ValidationError(
        f"{path_name}: the golden outputs computed on arm64 ({computed_on['cpu']}, QEMU {computed_on['qemu']}, "
        f"{computed_on['runtime']}) and on x86_64 disagree beyond the bounds the apps apply — a device would fail "
        f"its self-check on one of them: " + "; ".join(fails[:5]) + (f" (+{len(fails) - 5} more)" if len(fails) > 5 else "")
        + ". Not bundling it; `edgekit validate FILE --arch arm64` shows the file's arm64 parity.")
