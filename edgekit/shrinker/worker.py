"""One file, one process: answer DEV questions with an exported file as the apps run it (its length
buckets, its QA geometry) and time them, or (``start`` in the spec) answer the DEV questions after the
first ``start`` untimed. ``python -m edgekit.shrinker.worker SPEC.json`` writes the result JSON named in
the spec; ``edgekit.shrinker.measure`` starts one per file and pass.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def _load(task: str, dev: str, n: int | None) -> Any:
    from edgekit.quality.evaluate import load_data

    return load_data(task, dev if task == "question-answering" else None,
                     dev if task != "question-answering" else None, n)[1]


def _predict(subject: Any, questions: Any, labels: list[str]) -> tuple[dict[str, Any], float]:
    from edgekit.quality import evaluate

    if subject.task == "question-answering":
        preds, secs = evaluate.predict_squad(subject, questions, progress=False)
        return {k: [p.text, p.start, p.end] for k, p in preds.items()}, secs
    preds, secs = evaluate.predict_classes(subject, questions, labels, progress=False)
    return preds, secs


def run(spec: dict[str, Any]) -> dict[str, Any]:
    from edgekit.core.console import native_output_to_log, quiet_backends
    from edgekit.core.record import ArtifactRecord
    from edgekit.measure.bench import load_average
    from edgekit.model.modeling import load_tokenizer
    from edgekit.quality.evaluate import artifact_subject

    quiet_backends(Path(spec["log_folder"]) if spec.get("log_folder") else None)
    load0 = load_average()
    path = Path(spec["path"])
    record = ArtifactRecord.load(path)
    t0 = time.perf_counter()
    with native_output_to_log():
        subject = artifact_subject(path, tokenizer=load_tokenizer(spec["source"]), record=record,
                                   threads=spec.get("threads"))
    load_s = time.perf_counter() - t0
    labels = list(record.source.labels or [])
    questions = _load(spec["task"], spec["dev"], spec.get("n"))
    start = int(spec.get("start", 0))
    if start:  # answering more DEV questions for a file scored on the first ``start``: answers only, no timing
        from edgekit.shrinker.data import dev_keyed

        with native_output_to_log():
            got, _ = _predict(subject, questions[start:], labels)
        return {"path": str(path), "predictions": dev_keyed(spec["task"], got, start), "n": len(questions)}
    n_time = min(len(questions), int(spec["n_time"]))
    with native_output_to_log():
        _predict(subject, questions[:max(0, int(spec.get("warmup", 3)))], labels)  # untimed
        timed, secs = _predict(subject, questions[:n_time], labels)
        predictions = None
        if spec.get("predict"):
            if spec["task"] == "question-answering":
                rest, _ = _predict(subject, questions[n_time:], labels)
                predictions = {**timed, **rest}
            else:  # row keys are positions: answer every row in one call
                predictions, _ = _predict(subject, questions, labels)
    load1 = load_average()
    return {"path": str(path), "ms_per_question": 1000.0 * secs / max(1, n_time), "n_timed": n_time,
            "load_s": round(load_s, 3), "buckets": list(subject.buckets) if subject.buckets else None,
            "pad_to": subject.pad_to, "load_average": [load0, load1],
            "predictions": predictions}


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    result = run(spec)
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
