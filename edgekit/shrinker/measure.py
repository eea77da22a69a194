"""Seconds per real question: every candidate file answers DEV questions as the apps run it (length
buckets, the file's QA geometry), each file in its own process, several passes with the order
reversed each pass (as ``benchmarks/peers.py``), the load average recorded before and after each.
The first pass also returns every DEV answer, from which F1 and the same-answer rate are computed;
``answer_more`` has a file answer further DEV questions (a candidate the first ones left undecided).
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable


def _worker(spec: dict[str, Any], spec_path: Path, timeout: float) -> tuple[dict[str, Any] | None, str | None]:
    """Run ``edgekit.shrinker.worker`` on ``spec`` in a process of its own: (its result, or why it failed)."""
    spec_path.write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, "-m", "edgekit.shrinker.worker", str(spec_path)],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return None, "the measuring process failed: " + " | ".join(tail)
    return json.loads(Path(spec["result"]).read_text()), None


def answer_more(files: list[tuple[Path, str]], task: str, dev: str, start: int, n: int, threads: int,
                log_folder: Path, say: Callable[[str], Any] = print,
                timeout: float = 3600) -> dict[str, dict[str, Any]]:
    """Each file (its own process, as it was timed) answers DEV questions ``start`` … ``n - 1``, untimed.
    Returns per artifact path: ``predictions`` (those questions only) or ``error``."""
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="edgekit-shrink-") as tmp:
        for i, (path, source) in enumerate(files):
            spec = {"path": str(path), "source": str(source), "task": task, "dev": str(dev), "n": n, "start": start,
                    "threads": threads, "log_folder": str(log_folder), "result": str(Path(tmp) / f"r{i}.json")}
            got, error = _worker(spec, Path(tmp) / f"s{i}.json", timeout)
            if error:
                say(f"  {path.name}: {error}")
                out[str(path)] = {"error": error}
                continue
            out[str(path)] = {"predictions": got["predictions"]}
            say(f"  {path.name}: answered DEV questions {start + 1}–{got['n']}")
    return out


def measure_files(files: list[tuple[Path, str]], task: str, dev: str, n: int | None, n_time: int, passes: int,
                  threads: int, log_folder: Path, say: Callable[[str], Any] = print,
                  timeout: float = 3600) -> dict[str, dict[str, Any]]:
    """``files``: (artifact, its source model folder). Returns per artifact path: ``ms_per_question``
    (median over passes of each pass's mean), ``passes_ms``, ``load_average`` (every reading),
    ``buckets``, ``predictions`` (first pass) or ``error``."""
    out: dict[str, dict[str, Any]] = {str(p): {"passes_ms": [], "load_average": [], "predictions": None}
                                      for p, _ in files}
    with tempfile.TemporaryDirectory(prefix="edgekit-shrink-") as tmp:
        for k in range(passes):
            order = files if k % 2 == 0 else list(reversed(files))
            for i, (path, source) in enumerate(order):
                res = out[str(path)]
                if res.get("error"):
                    continue
                spec = {"path": str(path), "source": str(source), "task": task, "dev": str(dev), "n": n,
                        "n_time": n_time, "threads": threads, "predict": k == 0, "log_folder": str(log_folder),
                        "result": str(Path(tmp) / f"r{k}-{i}.json")}
                got, error = _worker(spec, Path(tmp) / f"s{k}-{i}.json", timeout)
                if error:
                    res["error"] = error
                    say(f"  pass {k + 1}: {path.name}: {res['error']}")
                    continue
                res["passes_ms"].append(got["ms_per_question"])
                res["load_average"] += [la for la in got["load_average"] if la]
                res["buckets"], res["n_timed"] = got["buckets"], got["n_timed"]
                if got.get("predictions") is not None:
                    res["predictions"] = got["predictions"]
                la = got["load_average"][0]
                load = f", load {la[0]:.2f}" if la else ""
                say(f"  pass {k + 1}/{passes}: {path.name}: {got['ms_per_question']:.1f} ms/question "
                    f"({got['n_timed']} questions{load})")
    for res in out.values():
        if res["passes_ms"]:
            res["ms_per_question"] = statistics.median(res["passes_ms"])
    return out

