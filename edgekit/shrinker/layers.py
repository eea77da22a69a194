"""The student's layer map, chosen by measurement on the held-out slice of TRAIN (never DEV).

Every candidate copy of the teacher (``distill.task.init_task_student``) is scored before any training,
as ``benchmarks/results/squad_quality.md`` did by hand ([0,2,4] 14.4 F1, [1,3,5] 11.7, [0,3,5] 8.9 … on
100 held-out train questions). That score alone misleads: on the shared SQuAD model [0,3,4] scored 15.35
untrained against [0,2,4]'s 14.94 and was chosen, and after the same 300 distillation steps it reached
F1 38.3 on DEV where [0,2,4] reached 58.1 (the one-epoch student of that map, 66.1, stayed 4.7 below the
hand-made [0,2,4] one). So the best few untrained maps, and the evenly spaced map of DistilBERT's recipe,
are each trained briefly (a probe) and the map whose probe scores best on the held-out slice is kept.
"""
from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any, Callable

from edgekit.core.errors import UsageError

#: All subsets are measured up to this many; beyond, a spread of evenly spaced maps and their shifts.
MAX_CANDIDATES = 20
#: Maps trained briefly before the choice: the best untrained ones, with the evenly spaced map among them.
PROBE_MAPS = 3


def parse_layers(value: str | int | list[int] | None) -> int | list[int] | None:
    """``3`` (a count: the map is measured), ``"0,2,4"`` (a map: used as given) or None (half the teacher)."""
    if value is None or isinstance(value, list):
        return value
    if isinstance(value, int):
        if value < 1:
            raise UsageError("--layers must be at least 1")
        return value
    text = str(value).strip()
    try:
        parts = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise UsageError(f"--layers {value!r}: give a count (3) or teacher layers (0,2,4)") from None
    if not parts:
        raise UsageError("--layers is empty")
    if "," not in text:
        if parts[0] < 1:
            raise UsageError("--layers must be at least 1")
        return parts[0]
    return parts


def candidate_maps(teacher_layers: int, k: int) -> list[list[int]]:
    """The maps of ``k`` of ``teacher_layers`` layers worth measuring: all of them when there are at
    most ``MAX_CANDIDATES``, else evenly spaced maps (first and last layer kept, each shift of the
    spacing), the bottom and the top ``k``, and every other layer from 0 and from 1."""
    if not 1 <= k <= teacher_layers:
        raise UsageError(f"--layers {k}: the teacher has {teacher_layers} layers; give 1..{teacher_layers}")
    allmaps = [list(c) for c in itertools.combinations(range(teacher_layers), k)]
    if len(allmaps) <= MAX_CANDIDATES:
        return allmaps
    maps: list[list[int]] = []

    def add(m: list[int]) -> None:
        m = sorted(set(m))
        if len(m) == k and all(0 <= i < teacher_layers for i in m) and m not in maps:
            maps.append(m)

    step = teacher_layers / k
    for shift in range(max(1, int(step))):
        add([min(teacher_layers - 1, int(i * step) + shift) for i in range(k)])
    add([round(i * (teacher_layers - 1) / max(1, k - 1)) for i in range(k)])
    add(list(range(k)))
    add(list(range(teacher_layers - k, teacher_layers)))
    add(list(range(0, teacher_layers, 2))[:k])
    add(list(range(1, teacher_layers, 2))[:k])
    return maps[:MAX_CANDIDATES]


def evenly_spaced(teacher_layers: int, k: int) -> list[int]:
    """Every (teacher_layers / k)-th layer from the first: DistilBERT's every-other-layer map ([0,2,4] of 6)."""
    return sorted({int(i * teacher_layers / k) for i in range(k)})


def probe_maps(measured: list[dict[str, Any]], teacher_layers: int, k: int) -> list[list[int]]:
    """The maps worth a probe: the best ``PROBE_MAPS`` by untrained score, one of them the evenly spaced map
    when it is a candidate (the untrained score is too weak a signal to leave the standard map out)."""
    ranked = [r["map"] for r in sorted(measured, key=lambda r: -r["score"])]
    spaced = evenly_spaced(teacher_layers, k)
    picks = ranked[:PROBE_MAPS]
    if spaced in ranked and spaced not in picks:
        picks = picks[:PROBE_MAPS - 1] + [spaced]
    return picks


def teacher_depth(teacher: str) -> int:
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(teacher)
    n = getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layers", None)
    if cfg.model_type != "bert":
        raise UsageError(f"shrink copies BERT layers into the student; {teacher} is a {cfg.model_type!r} model")
    return int(n)


def choose_layer_map(teacher: str, layers: int | list[int] | None, work: Path,
                     score: Callable[[Path], list[float]], say: Callable[[str], Any] = print,
                     probe: Callable[[Path, Path], Path] | None = None) -> dict[str, Any]:
    """Measure each candidate map (``score(folder)``: each question's metric on the held-out slice of TRAIN;
    their mean is the map's score), then, with ``probe(init, out) -> trained folder`` (a short training
    run), train the :func:`probe_maps` briefly and keep the one whose trained copy scores best. Returns
    ``{"map", "count", "teacher_layers", "measured": [{"map", "score"}], "probed": [{"map", "score"}],
    "chosen_by"}`` and, when a probed map other than the evenly spaced one is kept, ``"margin"``: its paired
    95% interval over that map on the same questions (:func:`probe_margin`); the chosen untrained copy is
    left in ``work/init`` for training. A map given by the user is used as is (and scored, for the report)."""
    from edgekit.distill.task import init_task_student
    from edgekit.quality.gate import mean_score

    n = teacher_depth(teacher)
    if isinstance(layers, list):
        maps, chosen_by = [sorted(layers)], "given"
    else:
        k = layers if layers is not None else max(1, n // 2)
        if k >= n:
            raise UsageError(f"--layers {k}: the teacher has {n} layers; a student needs fewer")
        maps, chosen_by = candidate_maps(n, k), "measured"
    work.mkdir(parents=True, exist_ok=True)

    def copy(m: list[int]) -> Path:
        folder = work / ("map-" + "-".join(map(str, m)))
        if folder.exists():
            shutil.rmtree(folder)
        init_task_student(teacher, folder, m)
        return folder

    measured = []
    for m in maps:
        folder = copy(m)
        s = mean_score(score(folder))
        measured.append({"map": m, "score": round(s, 3)})
        say(f"layer map {m}: {s:.2f} on the held-out slice of TRAIN (untrained)")
        shutil.rmtree(folder, ignore_errors=True)
    best = max(measured, key=lambda r: r["score"])["map"]  # the first of equals: the candidates' order
    probed: list[dict[str, Any]] = []
    margin: dict[str, Any] | None = None
    if probe is not None and chosen_by == "measured" and len(maps) > 1:
        each: dict[tuple[int, ...], list[float]] = {}
        for m in probe_maps(measured, n, len(maps[0])):
            say(f"layer map {m}: training a probe")
            start = copy(m)
            trained = probe(start, work / ("probe-" + "-".join(map(str, m))))
            each[tuple(m)] = score(trained)
            s = mean_score(each[tuple(m)])
            probed.append({"map": m, "score": round(s, 3)})
            say(f"layer map {m}: {s:.2f} on the held-out slice of TRAIN after a short training (probe)")
            shutil.rmtree(start, ignore_errors=True)
            shutil.rmtree(trained, ignore_errors=True)
        best = max(probed, key=lambda r: r["score"])["map"]
        chosen_by = "probe"
        spaced = evenly_spaced(n, len(maps[0]))
        if best != spaced and tuple(spaced) in each:
            margin = probe_margin(best, each[tuple(best)], spaced, each[tuple(spaced)])
            say(f"layer map {best}: {margin['text']}")
    init = work / "init"
    if init.exists():
        shutil.rmtree(init)
    copy(best).rename(init)
    return {"map": best, "count": len(best), "teacher_layers": n, "measured": measured, "probed": probed,
            "chosen_by": chosen_by, **({"margin": margin} if margin else {})}


def probe_margin(chosen: list[int], chosen_each: list[float], spaced: list[int],
                 spaced_each: list[float]) -> dict[str, Any]:
    """How far the kept probe is ahead of the evenly spaced map's on the same held-out questions: the mean
    difference and its paired bootstrap 95% interval (``quality.gate.paired_interval``). The choice stays the
    best point score; the interval says whether the held-out slice could tell the two apart, which the
    report shows beside it (on the shared SQuAD model's second teacher the probes kept [0,1,3], 0.81 ahead
    of [0,2,4] on 1,000 questions)."""
    from edgekit.quality.gate import mean_score, paired_interval

    lo, hi = paired_interval(chosen_each, spaced_each)
    diff = mean_score(chosen_each) - mean_score(spaced_each)
    decided = "beyond" if lo > 0 else "within"
    return {"over": spaced, "diff": round(diff, 3), "interval": [round(lo, 3), round(hi, 3)],
            "n": len(chosen_each),
            "text": (f"{diff:+.2f} [{lo:+.2f}, {hi:+.2f}] over the evenly spaced {spaced} on {len(chosen_each)} "
                     f"held-out questions ({decided} the sampling error)")}

