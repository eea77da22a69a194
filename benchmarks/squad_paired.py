"""Paired comparison of PyTorch models that answered the same SQuAD questions (issue 26 item 2).

Reads the JSON that ``edgekit eval MODEL... --squad DEV --output X.json`` writes (every prediction), scores
each question by the official v1.1 F1 (the gate's ``per_question_scores``) and prints, in Markdown: each
model's F1 on all questions, on the first N and on the rest; each model's share of the teacher's F1 with its
95% interval (the gate's ``share_interval``, as every share edgekit states); and the paired difference of
every pair with the gate's ``paired_interval``. Why: a share or a difference read on
one slice of DEV can mislead (``results/squad_quality.md``, "All 5,397 DEV questions").

    .venv/bin/edgekit eval A B TEACHER --squad ../shared/data/squad-v1.1/dev-even-articles.json.xz \\
        --threads 1 --output /tmp/all.json
    .venv/bin/python benchmarks/squad_paired.py /tmp/all.json --squad \\
        ../shared/data/squad-v1.1/dev-even-articles.json.xz --teacher TEACHER

An output may be xz-compressed (``X.json.xz``): the answers behind a committed comparison are kept so in
``results/squad_answers/``, where a later model can be paired with them without retraining the old ones (a
trained folder does not outlive the machine it was trained on).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def scores(eval_json: list[str], squad: str) -> dict[str, Any]:
    """Each model's per-question F1 (a numpy array in DEV order), by its folder's name (the whole path
    when two folders share a name), as ``edgekit eval``'s table names it."""
    import numpy as np

    from types import SimpleNamespace

    from edgekit.quality.gate import per_question_scores
    from edgekit.quality.squad import load_squad, read_json

    qs = load_squad(squad)
    full: dict[str, Any] = {}
    for path in eval_json:
        for r in read_json(path)["results"]:  # plain or .xz (the committed answers)
            preds = {k: SimpleNamespace(**v) for k, v in r["predictions"].items()}  # text, start, end
            full[r["name"]] = np.asarray(per_question_scores("question-answering", qs, preds))
    short = [Path(n).name for n in full]
    return {(Path(n).name if short.count(Path(n).name) == 1 else n): s for n, s in full.items()}


def report(by_model: dict[str, Any], teacher: str, first: int = 1000) -> str:
    """Markdown: F1 by slice, share of ``teacher`` with its interval, paired differences."""
    from edgekit.quality.gate import paired_interval, share_interval

    if teacher not in by_model:
        raise SystemExit(f"--teacher {teacher!r} is none of the models: {', '.join(by_model)}")
    t = by_model[teacher]
    n = t.size
    first = min(first, n)
    rest = (lambda s: f"{s[first:].mean():.2f}") if first < n else (lambda s: "—")
    lines = [f"| model | F1 all {n:,} | F1 first {first:,} | F1 other {n - first:,} | % of the teacher's F1 (95%) |",
             "|---|---:|---:|---:|---|"]
    for name, s in by_model.items():
        got = None if name == teacher else share_interval(list(t), list(s))
        share = "100%" if got is None else "{:.1f}% [{:.1f}, {:.1f}]".format(100 * got[0], *(100 * x for x in got[1]))
        lines.append(f"| {name} | {s.mean():.2f} | {s[:first].mean():.2f} | {rest(s)} | {share} |")
    lines += ["", f"| pair (b − a) | all {n:,} (95%) | first {first:,} |", "|---|---|---:|"]
    names = [m for m in by_model if m != teacher]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            lo, hi = paired_interval(list(by_model[b]), list(by_model[a]))
            d_all = by_model[b].mean() - by_model[a].mean()
            d_first = by_model[b][:first].mean() - by_model[a][:first].mean()
            lines.append(f"| {b} − {a} | {d_all:+.2f} [{lo:+.2f}, {hi:+.2f}] | {d_first:+.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("eval_json", nargs="+", help="outputs of `edgekit eval ... --output X.json` on the same questions")
    ap.add_argument("--squad", required=True, help="the SQuAD v1.1 file they answered")
    ap.add_argument("--teacher", required=True, help="the model whose F1 the shares are of (its name in the output)")
    ap.add_argument("--first", type=int, default=1000, help="the slice shown beside all (default 1000)")
    args = ap.parse_args()
    print(report(scores(args.eval_json, args.squad), args.teacher, args.first))


if __name__ == "__main__":
    main()
