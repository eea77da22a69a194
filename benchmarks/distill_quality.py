"""Held-out quality of distilled MiniLM students: the untrained layer cuts, the objective x layer-map
comparison, and the recipes (corpus x objective x steps x length x lr), each scored on agreement with the
teacher and on a labelled task.

Agreement is student vs the all-MiniLM-L6-v2 teacher on the 5,000 shipped held-out Wikipedia sentences
(never trained on): Spearman of pairwise similarities, recall@10 of nearest neighbours, mean embedding cosine.
The labelled task is SQuAD question -> paragraph retrieval on the shared dev file's articles that edgekit does
not ship. Results accumulate in ``benchmarks/results/distill_quality.json`` (each run replaces its own entry)
and the Markdown is regenerated from the JSON after every run.

    python benchmarks/distill_quality.py cuts                  # untrained [0,2,4] / [1,3,5] / [0,3,5]
    python benchmarks/distill_quality.py compare --steps 150   # 3 objectives x 3 layer maps, equal budget
    python benchmarks/distill_quality.py recipe default        # what `edgekit distill` runs (<= 10 min, 2 cores)
    python benchmarks/distill_quality.py recipe long --minutes 30   # LONG_FACTOR x its steps; again to continue
    python benchmarks/distill_quality.py recipe mix-rel        # any row of RECIPES
    python benchmarks/distill_quality.py --render-only         # rewrite the Markdown from the JSON (or: report)

``recipe`` needs the shared SQuAD dev file (``../shared``); the rest runs on a fresh clone. Run it niced on a
shared machine; the load average is recorded beside every wall time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402

RESULTS = harness.RESULTS
JSON_OUT = RESULTS / "distill_quality.json"
LAYER_MAPS = ([0, 2, 4], [1, 3, 5], [0, 3, 5])
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SQUAD_DEV = SHARED / "data" / "squad-v1.1" / "dev-even-articles.json.xz"
METRICS = ("spearman", "recall_at_10", "mean_cosine")
LONG_FACTOR = 10  # the long recipe's steps, in default recipes (5 until the 12,000-step row reached 98% MRR)


def _load() -> dict:
    res = json.loads(JSON_OUT.read_text()) if JSON_OUT.is_file() else {}
    for r in res.get("comparison", {}).get("rows", []):  # early rows stored the load average as text
        r["loadavg"] = [[float(v) for v in re.findall(r"[\d.]+", x)] if isinstance(x, str) else x
                        for x in r.get("loadavg", [])]
    return res


def _save(res: dict) -> None:
    _results().write(res)


def _results() -> harness.Results:
    """The json and the md rendered from it; ``update`` locks (recipes run as parallel processes)."""
    return harness.Results(JSON_OUT, render, lock=JSON_OUT.with_suffix(".lock"))


def _threads() -> int:
    """Torch's intra-op threads for this run (wall times with 1 thread and with 2 are not comparable)."""
    import torch

    return torch.get_num_threads()


class Scorer:
    """Teacher embeddings of the held-out set computed once; scores any model folder against them."""

    def __init__(self, max_len: int, cache_dir: str) -> None:
        from edgekit.distill.default import default_teacher
        from edgekit.distill.corpus import wiki_held_out
        from edgekit.distill.student import load_tokenizer
        from edgekit.distill.teacher_cache import held_out_teacher_embeddings

        self.teacher = default_teacher()
        self.tok = load_tokenizer(self.teacher)
        self.held = wiki_held_out()
        self.max_len = max_len
        self.t_emb = held_out_teacher_embeddings(self.teacher, self.tok, self.held, max_len, cache_dir)

    def score(self, model_dir: str | Path) -> dict:
        from transformers import AutoModel

        from edgekit.distill.compare import agreement, embed

        r = agreement(embed(AutoModel.from_pretrained(str(model_dir)), self.tok, self.held, self.max_len), self.t_emb)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}


def _cut(scorer: Scorer, layers: list[int], tmp: str, known: dict | None = None) -> tuple[str, dict]:
    """An untrained cut's folder and its held-out scores (``known``: scores already in the JSON)."""
    from edgekit.distill.student import init_student

    d = Path(tmp) / ("cut-" + "".join(map(str, layers)))
    if not (d / "config.json").is_file():
        init_student(scorer.teacher, d, layers=layers)
    key = ",".join(map(str, layers))
    if known and key in known:
        return str(d), known[key]
    return str(d), scorer.score(d)


def train_one(scorer: Scorer, init_dir: str, out: Path, weights, a: argparse.Namespace, data: list[str],
              steps: int, drop_held_out: bool, stop_after: int | None = None, resume: str | None = None,
              checkpoint_every: int = 0):
    from edgekit.distill.train import TrainConfig, train

    cfg = TrainConfig(teacher=scorer.teacher, student=init_dir, out=str(out), data=data, cache_dir=a.cache_dir,
                      max_len=a.max_len, batch_size=a.batch_size, steps=steps, lr=a.lr, seed=56, weights=weights,
                      progress=False, drop_held_out=drop_held_out, mixed_precision=a.mixed_precision,
                      stop_after=stop_after, resume=resume, checkpoint_every=checkpoint_every,
                      threads=a.threads)  # the row's thread count, not the free cores of the moment
    return train(cfg)


def part_cuts(a: argparse.Namespace) -> None:
    scorer = Scorer(a.max_len, a.cache_dir)
    res = _load()
    with tempfile.TemporaryDirectory() as tmp:
        res["untrained_cuts"] = {",".join(map(str, L)): _cut(scorer, list(L), tmp)[1] for L in LAYER_MAPS}
    res["held_out"] = {"file": "edgekit/distill/data/enwiki-heldout-5k.txt.xz", "sentences": len(scorer.held),
                       "max_len": a.max_len}
    _save(res)
    print(json.dumps(res["untrained_cuts"], indent=2))


def part_compare(a: argparse.Namespace) -> None:
    from edgekit.distill.corpus import WIKI_TRAIN
    from edgekit.distill.losses import LossWeights
    from edgekit.distill.weights import ENCODER_OBJECTIVES

    scorer = Scorer(a.max_len, a.cache_dir)
    res = _load()
    rows = {(r["objective"], r["layers"]): r for r in res.get("comparison", {}).get("rows", [])}
    objectives = a.objectives.split(",") if a.objectives else list(ENCODER_OBJECTIVES)
    maps = [[int(x) for x in m.split(",")] for m in a.maps.split(";")] if a.maps else [list(L) for L in LAYER_MAPS]
    with tempfile.TemporaryDirectory() as tmp:
        for L in maps:
            init_dir, cut = _cut(scorer, L, tmp, res.get("untrained_cuts"))
            for obj in objectives:
                key = (obj, ",".join(map(str, L)))
                if key in rows and not a.force:
                    continue
                load0 = harness.load()
                t0 = time.perf_counter()
                r = train_one(scorer, init_dir, Path(tmp) / f"out-{obj}-{key[1]}", LossWeights(**ENCODER_OBJECTIVES[obj]),
                              a, [str(WIKI_TRAIN)], a.steps, False)
                wall = time.perf_counter() - t0
                s = scorer.score(r.out)
                rows[key] = {"objective": obj, "layers": key[1], **{m: s[m] for m in METRICS},
                             "cut": {m: cut[m] for m in METRICS},
                             "below_cut": [m for m in METRICS if s[m] < cut[m]],
                             "steps": r.steps, "tokens": r.tokens_seen, "train_wall_s": round(wall, 1),
                             "tokens_per_s": round(r.tokens_per_s), "loadavg": [load0, harness.load()]}
                print(json.dumps(rows[key]), flush=True)
                res["comparison"] = {"steps": a.steps, "batch_size": a.batch_size, "max_len": a.max_len, "lr": a.lr,
                                     "mixed_precision": a.mixed_precision, "corpus": "shipped 50k Wikipedia slice",
                                     "rows": list(rows.values())}
                _save(res)


# ---------------------------------------------------------------------------------------------- issue 30

#: Recipes measured for issue 30 (labelled benchmarks): corpus x objective x steps x sequence length.
#: Corpora: ``wiki`` the shipped 50k Wikipedia slice; ``squad`` the shipped SQuAD-train slice (30k questions +
#: 8k paragraphs, never dev); ``mix`` both.
RECIPES = {
    "wiki-nmse": ("wiki", {"nmse": 1.0}, 600, 64),
    "wiki-rel": ("wiki", {"nmse": 1.0, "rel": 1.0}, 600, 64),
    "squad-nmse": ("squad", {"nmse": 1.0}, 600, 64),
    "squad-rel": ("squad", {"nmse": 1.0, "rel": 1.0}, 600, 64),
    "squad-rkl": ("squad", {"nmse": 1.0, "rkl": 1.0}, 600, 64),
    "mix-rel": ("mix", {"nmse": 1.0, "rel": 1.0}, 600, 64),
    "squad-rel-hid": ("squad", {"nmse": 1.0, "rel": 1.0, "hid": 1.0}, 600, 64),
    "squad-rel-128": ("squad", {"nmse": 1.0, "rel": 1.0}, 600, 128),
    "squad-rel-2000": ("squad", {"nmse": 1.0, "rel": 1.0}, 2000, 64),
    "mix-rel-2000": ("mix", {"nmse": 1.0, "rel": 1.0}, 2000, 64),
    "mix-rel-128": ("mix", {"nmse": 1.0, "rel": 1.0}, 600, 128),
    "mix-rel-256": ("mix", {"nmse": 1.0, "rel": 1.0}, 600, 256),
    "mix-rkl": ("mix", {"nmse": 1.0, "rkl": 1.0}, 600, 64),
    "mix-rel-1200": ("mix", {"nmse": 1.0, "rel": 1.0}, 1200, 64),
    "mix-rel-256-lr3": ("mix", {"nmse": 1.0, "rel": 1.0}, 600, 256, 3e-4),
    "mix-rel-256-1500": ("mix", {"nmse": 1.0, "rel": 1.0}, 1500, 256),
    "mix-rel-256-lr3-1200": ("mix", {"nmse": 1.0, "rel": 1.0}, 1200, 256, 3e-4),
    "mix-rel-256-lr3-6000": ("mix", {"nmse": 1.0, "rel": 1.0}, 6000, 256, 3e-4),
    "mix-rel-hid-256-lr3": ("mix", {"nmse": 1.0, "rel": 1.0, "hid": 1.0}, 600, 256, 3e-4),
    "mix-rel-256-lr3-12000": ("mix", {"nmse": 1.0, "rel": 1.0}, 12000, 256, 3e-4),
}


class RetrievalScorer:
    """Question -> paragraph retrieval on the shared SQuAD dev file's 18 articles NOT in the shipped slice
    (2,000 questions, all their paragraphs) and on the shipped slice; teacher embeddings cached."""

    def __init__(self, teacher: str, tok, cache_dir: str, dev: Path = SQUAD_DEV) -> None:
        from edgekit.distill import retrieval as R

        if not Path(dev).is_file():
            raise SystemExit(f"retrieval benchmark needs {dev} (the shared SQuAD dev file)")
        self.R, self.tok = R, tok
        self.sets = {"dev18": R.from_squad(dev, exclude=R.SLICE_ARTICLES, max_questions=2000, name="dev18"),
                     "slice": R.load_slice()}
        self.t_ranks = {k: R.teacher_ranks(teacher, tok, rs, cache_dir) for k, rs in self.sets.items()}
        self.teacher = {k: R.metrics_of(self.t_ranks[k], rs) for k, rs in self.sets.items()}

    def score(self, model_dir) -> dict:
        """Each set's numbers, with the MRR share of the teacher's and its paired 95% interval."""
        from transformers import AutoModel

        m = AutoModel.from_pretrained(str(model_dir))
        out = {}
        for k, rs in self.sets.items():
            ranks = self.R.model_ranks(m, self.tok, rs)
            out[k] = {**self.R.metrics_of(ranks, rs), "mrr_share": self.R.mrr_share(ranks, self.t_ranks[k])}
        return out


def _corpus_files(name: str) -> list[str]:
    from edgekit.distill.corpus import SQUAD_TRAIN, WIKI_TRAIN

    return {"wiki": [str(WIKI_TRAIN)], "squad": [str(SQUAD_TRAIN)], "mix": [str(SQUAD_TRAIN), str(WIKI_TRAIN)]}[name]


#: Steps between checkpoints of a recipe run: a stopped run (``--minutes``, Ctrl-C) continues from the last.
CHECKPOINT_EVERY = 500


def _spec(r: tuple) -> tuple:
    """A recipe as (corpus, weights, steps, max_len, lr), lr filled in (the table omits 1e-4)."""
    corpus, w, steps, max_len, *rest = r
    return corpus, dict(w), steps, max_len, rest[0] if rest else 1e-4


def resolve(name: str) -> tuple[str, tuple]:
    """``(row name, spec)`` of a recipe name. ``default`` is what ``edgekit distill`` runs (read from
    ``edgekit.distill.default``, never repeated here) and ``long`` the same with ``LONG_FACTOR`` times its
    steps; each is the row of ``RECIPES`` with those settings, so the default's numbers are one measured row."""
    if name not in ("default", "long"):
        return name, _spec(RECIPES[name])
    from edgekit.distill.default import OBJECTIVES, DefaultOptions

    d = DefaultOptions()
    spec = (d.corpus, dict(OBJECTIVES[d.objective]), d.steps * (LONG_FACTOR if name == "long" else 1), d.max_len,
            d.lr)
    for key, r in RECIPES.items():
        if _spec(r) == spec:
            return key, spec
    return name, spec


def part_recipe(a: argparse.Namespace) -> None:
    """Train each named recipe from the default's untrained cut and score it: agreement on held-out Wikipedia,
    retrieval on SQuAD dev. A run stopped by ``--minutes`` (or killed) continues from its last checkpoint
    when run again; a recipe with a row is skipped unless ``--force``."""
    from edgekit.distill.default import DEFAULT_LAYERS
    from edgekit.distill.losses import LossWeights
    from edgekit.distill.student import init_student

    scorer = Scorer(64, a.cache_dir)  # agreement always at 64 tokens, as every other row
    rscorer = RetrievalScorer(scorer.teacher, scorer.tok, a.cache_dir)
    layers = [int(x) for x in DEFAULT_LAYERS.split(",")]
    work = Path(a.work) / "issue30"
    init_dir = work / "init"
    if not (init_dir / "config.json").is_file():
        init_student(scorer.teacher, init_dir, layers=layers)
    with _results().update() as res:
        sec = res.setdefault("issue30", {"rows": {}})
        if "cut" not in sec:
            sec["cut"] = _scores(scorer, rscorer, init_dir)
        sec["teacher"] = rscorer.teacher
        sec["sets"] = {k: {"questions": len(rs.questions), "paragraphs": len(rs.paragraphs), "articles": rs.articles}
                       for k, rs in rscorer.sets.items()}
        done = dict(sec.get("rows", {}))
    for asked in a.names:
        name, (corpus, w, steps, max_len, lr) = resolve(asked)
        if name in done and a.rescore:  # score the kept student again (new scores), training untouched
            if not (work / name / "config.json").is_file():
                print(f"{asked}: no trained student in {work / name} to score again", file=sys.stderr)
                continue
            row = {**done[name], **_scores(scorer, rscorer, work / name)}
            print(json.dumps(row), flush=True)
            with _results().update() as res:
                res["issue30"]["rows"][name] = row
            continue
        if name in done and not a.force:
            print(f"{asked}: row {name} is in the results already (--force runs it again, --rescore scores "
                  "its student again)", file=sys.stderr)
            continue
        out = work / name
        if a.force:  # from scratch, not from an old run's checkpoints
            shutil.rmtree(out, ignore_errors=True)
        resume = "auto" if (out / "checkpoints").is_dir() else None
        stop_after = None
        if a.minutes:  # steps this session from the speed of an earlier one (or a first guess)
            sps = _speed(out) or 0.3
            stop_after = max(1, int(a.minutes * 60 * sps))
        a2 = argparse.Namespace(**{**vars(a), "max_len": max_len, "lr": lr})
        load0 = harness.load()
        t0 = time.perf_counter()
        r = train_one(scorer, str(init_dir), out, LossWeights(**w), a2, _corpus_files(corpus), steps, False,
                      stop_after=stop_after, resume=resume, checkpoint_every=CHECKPOINT_EVERY)
        wall = time.perf_counter() - t0
        load1 = harness.load()
        sessions = _sessions(out) + [{"wall_s": round(wall, 1), "steps_to": r.steps, "threads": _threads(),
                                      "loadavg": [load0, load1]}]
        (out / "sessions.json").write_text(json.dumps(sessions))
        if r.steps < steps:
            print(f"{name}: stopped at step {r.steps} of {steps}; run the same command again to continue",
                  file=sys.stderr)
            continue
        row = {"recipe": name, "corpus": corpus, "objective": "+".join(w), "steps": r.steps, "max_len": max_len,
               "batch_size": a.batch_size, "lr": lr, "tokens": r.tokens_seen,
               "train_wall_s": round(sum(x["wall_s"] for x in sessions), 1),
               "threads": _threads(), "loadavg": [sessions[0]["loadavg"][0], load1],
               **_scores(scorer, rscorer, r.out),
               "command": f"python benchmarks/distill_quality.py recipe {asked}"}
        if len(sessions) > 1:
            row["sessions"] = sessions
        print(json.dumps(row), flush=True)
        with _results().update() as res:
            res.setdefault("issue30", {"rows": {}}).setdefault("rows", {})[name] = row


def _scores(scorer: Scorer, rscorer: RetrievalScorer, model_dir: str | Path) -> dict:
    """A row's scores of one student: agreement on held-out Wikipedia and retrieval on each SQuAD set."""
    ag = scorer.score(model_dir)
    return {"agreement": {m: ag[m] for m in METRICS}, **rscorer.score(model_dir)}


def _sessions(out: Path) -> list[dict]:
    f = out / "sessions.json"
    return json.loads(f.read_text()) if f.is_file() else []


def _speed(out: Path) -> float | None:
    """Steps per second of the last session of a recipe run (None before its first)."""
    ss = _sessions(out)
    if not ss:
        return None
    before = ss[-2]["steps_to"] if len(ss) > 1 else 0
    return (ss[-1]["steps_to"] - before) / ss[-1]["wall_s"] if ss[-1]["wall_s"] else None


def _share(r: dict, t: dict) -> str:
    """MRR as a share of the teacher's, with its paired 95% interval when the row has one."""
    iv = (r.get("mrr_share") or {}).get("interval")
    return f"{r['mrr'] / t['mrr']:.1%}" + (f" [{iv[0]:.1%}, {iv[1]:.1%}]" if iv else "")


def _render30(sec: dict) -> list[str]:
    t, cut = sec["teacher"], sec["cut"]
    sets = sec.get("sets", {})
    d18, sl = sets.get("dev18", {}), sets.get("slice", {})
    L = ["", "## Labelled benchmark: SQuAD question -> paragraph retrieval (issue 30)", "",
         f"Retrieval on the shared SQuAD v1.1 dev file's **18 articles not in the shipped slice** "
         f"({d18.get('questions')} questions hashed from them, each ranked against all {d18.get('paragraphs')} "
         f"paragraphs of those articles): R@1, R@5, MRR, and MRR as a share of the teacher's with, where the row has "
         f"it, the 95% paired bootstrap interval of that share (questions resampled, each keeping both models' "
         f"ranks; two rows whose intervals overlap widely are not told apart by these questions). `slice MRR` is the "
         f"shipped 300-question slice every `edgekit distill` run reports ({sl.get('paragraphs')} paragraphs, 6 "
         "other articles). Agreement (Spearman, recall@10) is on the 5,000 held-out Wikipedia sentences as above. "
         "Corpora: `wiki` = shipped 50k Wikipedia sentences; `squad` = SQuAD v1.1 **train** slice (30,000 questions "
         "+ 8,000 paragraphs, `edgekit/distill/data/squad-train-qc.txt.xz`, never dev); `mix` = both. Objectives: "
         "`nmse` = normalised pooled MSE; `rel` = MSE of the in-batch cosine-similarity matrices; `rkl` = KL of "
         "the in-batch similarity softmax (T 0.05); `hid` = token cosine of every student layer to the teacher layer "
         "it was copied from (MiniLM/TinyBERT-style intermediate alignment; needs the teacher every step). Batch 32, "
         "layers [0,3,5], 1 thread, `nice -n 5`, each run its own process (some ran two at a time: see load).",
         "", "| model | corpus | objective | steps | max len | lr | R@1 | R@5 | MRR | MRR % teacher | slice MRR | "
         "Spearman | recall@10 | train wall s | load (1/5/15 min) |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
         f"| teacher all-MiniLM-L6-v2 | | | | | | {t['dev18']['r_at_1']:.4f} | {t['dev18']['r_at_5']:.4f} | "
         f"{t['dev18']['mrr']:.4f} | 100.0% | {t['slice']['mrr']:.4f} | 1.0000 | 1.0000 | | |",
         f"| untrained cut [0,3,5] | | | | | | {cut['dev18']['r_at_1']:.4f} | {cut['dev18']['r_at_5']:.4f} | "
         f"{cut['dev18']['mrr']:.4f} | {cut['dev18']['mrr'] / t['dev18']['mrr']:.1%} | {cut['slice']['mrr']:.4f} | "
         f"{cut['agreement']['spearman']:.4f} | {cut['agreement']['recall_at_10']:.4f} | | |"]
    # which rows are the default and the long recipe: from edgekit's defaults now, not from a name saved earlier
    roles = {resolve(n)[0]: n for n in ("long", "default")}
    for name, r in sec.get("rows", {}).items():
        label = f"**{name}** ({roles[name]})" if name in roles else name
        L.append(f"| {label} | {r['corpus']} | {r['objective']} | {r['steps']} | {r['max_len']} | {r['lr']:g} | "
                 f"{r['dev18']['r_at_1']:.4f} | {r['dev18']['r_at_5']:.4f} | {r['dev18']['mrr']:.4f} | "
                 f"{_share(r['dev18'], t['dev18'])} | {r['slice']['mrr']:.4f} | "
                 f"{r['agreement']['spearman']:.4f} | {r['agreement']['recall_at_10']:.4f} | {r['train_wall_s']:.0f} | "
                 f"{r['loadavg'][0]} -> {r['loadavg'][1]} |")
    L += ["", "Commands: `nice -n 5 python benchmarks/distill_quality.py recipe NAME [NAME ...] --threads 1`; rows "
          "are the recipes in `RECIPES` of that script. `recipe default` runs the row `edgekit distill` runs (its "
          f"settings read from `edgekit.distill.default`), `recipe long` the same with {LONG_FACTOR} times its steps; "
          "`--minutes N` stops a run after about N minutes and the same command continues it."]
    for note in sec.get("notes", []):
        L += ["", note]
    return L


def render(res: dict) -> str:
    L = ["# Distillation quality on held-out general English", "",
         "Generated by `benchmarks/distill_quality.py` from real runs; numbers are the student vs the teacher "
         "(all-MiniLM-L6-v2, 6 layers) on the 5,000 shipped held-out Wikipedia sentences "
         "(`edgekit/distill/data/enwiki-heldout-5k.txt.xz`, never trained on): Spearman of all pairwise "
         "similarities among the first 2,000 (~2M pairs), recall@10 of nearest neighbours among all 5,000, "
         "mean cosine of the two embeddings of a sentence. Wall times were measured on a shared 2-core machine "
         "(load average recorded beside them).", ""]
    L += ["| model | Spearman | recall@10 | mean cosine |", "|---|---|---|---|",
          "| teacher (reference: itself) | 1.0000 | 1.0000 | 1.0000 |"]
    for k, v in res.get("untrained_cuts", {}).items():
        L.append(f"| untrained cut, teacher layers [{k}] | {v['spearman']:.4f} | {v['recall_at_10']:.4f} | "
                 f"{v['mean_cosine']:.4f} |")
    hist = {n: e for n, e in res.get("recipes", {}).items() if e.get("finished")}
    for name, e in hist.items():
        L.append(f"| issue 14's {name} recipe ({e['objective']}, {e['steps']} steps) | {e['spearman']:.4f} | "
                 f"{e['recall_at_10']:.4f} | {e['mean_cosine']:.4f} |")
    if hist:
        L += ["", "Issue 14's recipes (history; `edgekit distill` has run issue 30's recipe since, see the last "
              "section, \"Labelled benchmark\", whose `recipe default` and `recipe long` rows replace them):"]
        for name, e in hist.items():
            L.append(f"- {name}: {e['corpus']}; teacher layers [{e['layers']}]; {e['objective']}; {e['steps']} "
                     f"steps, batch {e['batch_size']} x at most {e['max_len']} tokens, lr {e['lr']}; "
                     f"{e['tokens']:,} tokens; {e['wall_s_total']:.0f} s wall"
                     + (f" with {e['threads']} thread(s)" if e.get("threads") else "")
                     + f" over {len(e['sessions'])} session(s) (load averages {[x['loadavg'] for x in e['sessions']]})"
                     f"; below the untrained cut on: {e.get('below_cut') or 'nothing'}")
    comp = res.get("comparison")
    if comp:
        L += ["", "## Objective x layer map (equal budget)", "",
              f"Each run: {comp['steps']} steps, batch {comp['batch_size']} x at most {comp['max_len']} tokens, "
              f"lr {comp['lr']}, mixed precision {comp['mixed_precision']}, on the {comp['corpus']}. "
              "Objectives: `cos+mse` = hidden-state cosine + MSE of the mean-pooled embeddings (the default before "
              "issue 14); `nmse` = squared distance of the L2-normalised pooled embeddings (sentence-transformers "
              "practice); `nmse+hmse` = that plus token-level hidden-state MSE. Δ = student minus untrained cut.", "",
              "| objective | layers | Spearman (Δ) | recall@10 (Δ) | mean cosine (Δ) | tokens | train wall s | load |",
              "|---|---|---|---|---|---|---|---|"]
        for r in sorted(comp["rows"], key=lambda r: (r["layers"], r["objective"])):
            cells = [f"{r[m]:.4f} ({r[m] - r['cut'][m]:+.4f})" for m in METRICS]
            L.append(f"| {r['objective']} | [{r['layers']}] | {' | '.join(cells)} | {r['tokens']:,} | "
                     f"{r['train_wall_s']:.0f} | {r['loadavg'][0]} |")
        done = {(r["objective"], r["layers"]) for r in comp["rows"]}
        missing = [f"{o} [{m}]" for m in (",".join(map(str, x)) for x in LAYER_MAPS)
                   for o in ("cos+mse", "nmse", "nmse+hmse") if (o, m) not in done]
        best = max(comp["rows"], key=lambda r: r["spearman"])
        by = {(r["objective"], r["layers"]): r for r in comp["rows"]}
        L += ["", f"Best row by Spearman: `{best['objective']}` on layers [{best['layers']}]."]
        spreads = {}
        for m_ in ("0,2,4", "1,3,5", "0,3,5"):  # how much the objective matters on each layer map
            objs = [by[(o, m_)] for o in ("cos+mse", "nmse", "nmse+hmse") if (o, m_) in by]
            if len(objs) > 1:
                spreads[m_] = {m: max(r[m] for r in objs) - min(r[m] for r in objs) for m in METRICS}
        if spreads:
            worst = {m: max(sp[m] for sp in spreads.values()) for m in METRICS}
            L.append(f"On each layer map ({', '.join(f'[{k}]' for k in spreads)}) the objectives differ by at most "
                     + ", ".join(f"{worst[m]:.4f} {m}" for m in METRICS) + ".")
        best_035 = [r for r in comp["rows"] if r["layers"] == "0,3,5"]
        if ("nmse", "0,3,5") in by and best_035:
            gap = {m: max(r[m] for r in best_035) - by[("nmse", "0,3,5")][m] for m in METRICS}
            L.append("On the default map [0,3,5], `nmse` is within " + ", ".join(
                f"{gap[m]:.4f} {m}" for m in METRICS) + " of the best objective: the cheapest, `nmse`, is the default "
                "for encoder-only teachers (its teacher output is one cached vector per sequence, no hidden states).")
        if ("nmse", "0,3,5") in by and ("nmse", "1,3,5") in by:
            a, b = by[("nmse", "0,3,5")], by[("nmse", "1,3,5")]
            L.append("The layer map moves the numbers more: `nmse` on [0,3,5] minus [1,3,5]: " + ", ".join(
                f"{a[m] - b[m]:+.4f} {m}" for m in METRICS) + ". Default map: [0,3,5].")
        L += [
              "", "Not run in this budget: " + (", ".join(missing) if missing else "none") + "."]
    if res.get("issue30", {}).get("teacher"):
        L += _render30(res["issue30"])
    L += ["", f"Machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs (shared)."]
    return "\n".join(L) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = harness.parser(__doc__, threads=None, work=Path(tempfile.gettempdir()) / "edgekit-distill-quality",
                       render_only=True)
    p.add_argument("part", nargs="?", choices=["cuts", "compare", "recipe", "report"],
                   help="report: the same as --render-only")
    p.add_argument("names", nargs="*", help="recipe: names from RECIPES, or default / long")
    p.add_argument("--steps", type=int, default=None, help="compare: steps per run (default 150)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-len", type=int, default=64, help="cuts and compare: sequence length (recipes carry theirs)")
    p.add_argument("--lr", type=float, default=1e-4, help="compare: learning rate (recipes carry theirs)")
    p.add_argument("--mixed-precision", default="auto")
    p.add_argument("--objectives", default=None, help="comma-separated subset for compare")
    p.add_argument("--maps", default=None, help="semicolon-separated layer maps for compare, e.g. '1,3,5;0,3,5'")
    p.add_argument("--force", action="store_true", help="compare, recipe: redo rows already in the JSON")
    p.add_argument("--rescore", action="store_true",
                   help="recipe: score the kept students of rows already in the JSON again, without training")
    p.add_argument("--minutes", type=float, default=None,
                   help="recipe: stop after about this long; the same command continues from the last checkpoint")
    p.add_argument("--cache-dir", default=None)
    a = p.parse_args(argv)
    if a.render_only or a.part == "report":
        return _results().render_only()
    if a.part is None:
        p.error("name a part (cuts, compare, recipe) or --render-only")
    if a.part == "recipe":
        unknown = [n for n in a.names if n not in RECIPES and n not in ("default", "long")]
        if unknown or not a.names:
            p.error(f"recipe names: default, long, {', '.join(RECIPES)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if a.cache_dir is None:
        from edgekit.distill.train import DEFAULT_CACHE

        a.cache_dir = str(DEFAULT_CACHE)
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    if a.part == "recipe":
        part_recipe(a)
    elif a.part == "cuts":
        part_cuts(a)
    else:
        a.steps = a.steps or 150
        part_compare(a)
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
