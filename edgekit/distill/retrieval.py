"""A labelled benchmark for every distillation run: question -> paragraph retrieval on SQuAD v1.1 dev.

Agreement with the teacher (:mod:`edgekit.distill.compare`) says how close a student is; retrieval says what a
user of a sentence encoder gets: each question is embedded, every candidate paragraph is embedded, and the
question's own paragraph should come first. Reported: R@1, R@5 (share of questions whose paragraph is in the
top 1 / 5) and MRR (mean of 1 / rank of that paragraph). A tie with the gold paragraph counts against it, so a
model that maps everything to one vector scores R@1 = 0, not 1.

The shipped slice (``data/squad-dev-retrieval-300.json.xz``) is 300 questions of six SQuAD v1.1 dev articles
(positions 1, 5, 9, 13, 17, 21 of the shared ``dev-even-articles.json.xz``) and all 246 paragraphs of those
articles as candidates; benchmarks/distill_quality.py scores the other 18 articles of the shared file.
"""
from __future__ import annotations

import hashlib
import json
import lzma
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.distill.corpus import DATA_DIR

if TYPE_CHECKING:
    from edgekit.distill.train import TrainConfig, TrainResult

RETRIEVAL_SLICE = DATA_DIR / "squad-dev-retrieval-300.json.xz"
#: Positions (in the shared dev-even-articles file) of the articles the shipped slice is drawn from.
SLICE_ARTICLES = (1, 5, 9, 13, 17, 21)
#: The retrieval numbers of a run, in display order.
RETRIEVAL_METRICS = ("r_at_1", "r_at_5", "mrr")
LABELS = {"r_at_1": "R@1", "r_at_5": "R@5", "mrr": "MRR"}
#: Token budgets: questions are short; paragraphs get the sentence-transformers MiniLM limit (256 tokens).
QUESTION_LEN = 64
PARAGRAPH_LEN = 256
ATTRIBUTION = "Contains text from Wikipedia (CC BY-SA) and/or SQuAD v1.1 (CC BY-SA 4.0, Rajpurkar et al. 2016)."


@dataclass
class RetrievalSet:
    """Questions, candidate paragraphs and, per question, the index of its own paragraph."""

    questions: list[str]
    paragraphs: list[str]
    gold: list[int]
    name: str = ""
    articles: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.questions) != len(self.gold) or not self.questions or not self.paragraphs:
            raise ValueError("a retrieval set needs questions, paragraphs and one gold paragraph per question")
        if min(self.gold) < 0 or max(self.gold) >= len(self.paragraphs):
            raise ValueError("gold paragraph index out of range")


def _qhash(qid: str) -> int:
    return int(hashlib.blake2b(qid.encode(), digest_size=8).hexdigest(), 16)


def from_squad(path: str | os.PathLike, articles: list[int] | None = None, exclude: tuple[int, ...] = (),
               max_questions: int | None = None, name: str = "") -> RetrievalSet:
    """A retrieval set from a SQuAD v1.1 JSON file (``.xz`` fine): the chosen articles' paragraphs are the
    candidates; questions are all of theirs, or ``max_questions`` of them picked by a hash of the question id
    (deterministic, spread over the articles)."""
    opener: Any = lzma.open if str(path).endswith(".xz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)["data"]
    paragraphs: list[str] = []
    qs: list[tuple[int, str, int]] = []
    titles = []
    for i, art in enumerate(data):
        if (articles is not None and i not in articles) or i in exclude:
            continue
        titles.append(art.get("title", str(i)))
        for para in art["paragraphs"]:
            paragraphs.append(para["context"])
            for qa in para["qas"]:
                qs.append((_qhash(qa["id"]), qa["question"].strip(), len(paragraphs) - 1))
    if max_questions is not None and len(qs) > max_questions:
        qs = sorted(qs)[:max_questions]
        qs.sort(key=lambda q: (q[2], q[0]))  # back in document order
    return RetrievalSet([q[1] for q in qs], paragraphs, [q[2] for q in qs], name=name or str(path),
                        articles=titles)


def make_slice(dev_path: str | os.PathLike, out: str | os.PathLike = RETRIEVAL_SLICE,
               n_questions: int = 300) -> Path:
    """Write the shipped slice from the shared dev file (``python -m edgekit.distill.retrieval DEV``)."""
    rs = from_squad(dev_path, articles=list(SLICE_ARTICLES), max_questions=n_questions)
    doc = {"attribution": ATTRIBUTION,
           "source": "SQuAD v1.1 dev, articles at positions " + ", ".join(map(str, SLICE_ARTICLES))
                     + " of ../shared/data/squad-v1.1/dev-even-articles.json.xz",
           "articles": rs.articles, "paragraphs": rs.paragraphs,
           "questions": [{"question": q, "paragraph": g} for q, g in zip(rs.questions, rs.gold)]}
    p = Path(out)
    with lzma.open(p, "wt", encoding="utf-8", preset=9 | lzma.PRESET_EXTREME) as fh:
        json.dump(doc, fh, ensure_ascii=False, separators=(",", ":"))
    return p


def load_slice(path: str | os.PathLike = RETRIEVAL_SLICE) -> RetrievalSet:
    """The shipped slice (or another file in its format)."""
    with lzma.open(path, "rt", encoding="utf-8") as fh:
        doc = json.load(fh)
    return RetrievalSet([q["question"] for q in doc["questions"]], doc["paragraphs"],
                        [q["paragraph"] for q in doc["questions"]], name=str(path), articles=doc.get("articles", []))


def slice_label(rs: RetrievalSet) -> str:
    name = Path(rs.name).name if rs.name else "retrieval set"
    return f"{name}: {len(rs.questions)} questions, {len(rs.paragraphs)} candidate paragraphs"


# ---------------------------------------------------------------------------------------------- metrics


def gold_ranks(q_emb: Any, p_emb: Any, gold: list[int]) -> Any:
    """Each question's rank of its own paragraph by dot product (cosine for normalised embeddings): 1 + the
    number of *other* paragraphs scoring at least as high (ties count against the gold one)."""
    import torch

    q, p = torch.as_tensor(q_emb).float(), torch.as_tensor(p_emb).float()
    g = torch.as_tensor(gold, dtype=torch.long)
    scores = q @ p.T
    gs = scores[torch.arange(len(g)), g].unsqueeze(1)
    ge = (scores >= gs).sum(1) - 1  # the gold paragraph itself is >= itself
    return (1 + ge).double()


def _metrics(rank: Any, n_paragraphs: int, ks: tuple[int, ...] = (1, 5)) -> dict:
    out: dict[str, Any] = {f"r_at_{k}": float((rank <= k).double().mean()) for k in ks}
    out["mrr"] = float((1.0 / rank).mean())
    out["questions"] = len(rank)
    out["paragraphs"] = n_paragraphs
    return out


def retrieval_metrics(q_emb: Any, p_emb: Any, gold: list[int], ks: tuple[int, ...] = (1, 5)) -> dict:
    """R@k and MRR of question -> paragraph retrieval (ranks as :func:`gold_ranks`)."""
    return _metrics(gold_ranks(q_emb, p_emb, gold), len(p_emb), ks)


def mrr_share(student_ranks: Any, teacher_ranks: Any) -> dict:
    """The student's MRR as a share of the teacher's on the same questions, with a 95% paired bootstrap
    interval (questions resampled, each keeping both models' ranks): a few hundred questions move MRR by
    about a point, so a share is reported with the interval it comes with."""
    from edgekit.quality.gate import share_interval

    got = share_interval((1.0 / teacher_ranks).tolist(), (1.0 / student_ranks).tolist())
    if got is None:
        return {"share": None, "interval": None}
    share, (lo, hi) = got
    return {"share": round(share, 4), "interval": [round(lo, 4), round(hi, 4)]}


def _max_len(model: Any, want: int) -> int:
    n = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return min(want, int(n)) if n else want


def embed_set(model: Any, tokenizer: Any, rs: RetrievalSet) -> tuple[Any, Any]:
    """Normalised mean-pooled embeddings of the questions and the paragraphs."""
    from edgekit.distill.compare import embed

    return (embed(model, tokenizer, rs.questions, _max_len(model, QUESTION_LEN)),
            embed(model, tokenizer, rs.paragraphs, _max_len(model, PARAGRAPH_LEN), batch_size=16))


def _rounded(m: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in m.items()}


def model_ranks(model: Any, tokenizer: Any, rs: RetrievalSet) -> Any:
    """Each question's gold-paragraph rank under a model (a ``transformers`` model object or a model folder)."""
    if isinstance(model, (str, os.PathLike)):
        from transformers import AutoModel

        model = AutoModel.from_pretrained(str(model))
    q, p = embed_set(model, tokenizer, rs)
    return gold_ranks(q, p, rs.gold)


def teacher_ranks(teacher_dir: str, tokenizer: Any, rs: RetrievalSet, cache_dir: str | os.PathLike) -> Any:
    """The teacher's gold-paragraph ranks; its embeddings are cached by weights and texts (computed once)."""
    from transformers import AutoConfig

    from edgekit.distill.teacher_cache import held_out_teacher_embeddings

    class _Probe:  # _max_len reads only .config.max_position_embeddings
        config = AutoConfig.from_pretrained(teacher_dir)

    q = held_out_teacher_embeddings(teacher_dir, tokenizer, rs.questions, _max_len(_Probe, QUESTION_LEN), cache_dir)
    p = held_out_teacher_embeddings(teacher_dir, tokenizer, rs.paragraphs, _max_len(_Probe, PARAGRAPH_LEN), cache_dir)
    return gold_ranks(q, p, rs.gold)


def metrics_of(ranks: Any, rs: RetrievalSet) -> dict:
    """R@1, R@5 and MRR (rounded) from gold-paragraph ranks."""
    return _rounded(_metrics(ranks, len(rs.paragraphs)))


def score_model(model: Any, tokenizer: Any, rs: RetrievalSet) -> dict:
    """Retrieval numbers of a model (a ``transformers`` model object or a model folder)."""
    return metrics_of(model_ranks(model, tokenizer, rs), rs)


def score_teacher(teacher_dir: str, tokenizer: Any, rs: RetrievalSet, cache_dir: str | os.PathLike) -> dict:
    """The teacher's retrieval numbers (embeddings cached)."""
    return metrics_of(teacher_ranks(teacher_dir, tokenizer, rs, cache_dir), rs)


def below_cut(student: dict, cut: dict) -> list[str]:
    """Retrieval numbers on which the student does not beat the untrained cut (equal counts as not beating,
    except where both are already perfect)."""
    return [m for m in RETRIEVAL_METRICS
            if m in student and m in cut and student[m] <= cut[m] and not (student[m] >= 1.0 and cut[m] >= 1.0)]


def evaluate_run(teacher_dir: str, cut: Any, student: Any, tokenizer: Any, cache_dir: str | os.PathLike,
                 rs: RetrievalSet | None = None, cut_scores: dict | None = None) -> dict:
    """Cut, student and teacher on one retrieval set, plus the flag list; ``cut_scores`` reuses a cut already
    scored (the default command scores it before training, when its folder still exists)."""
    rs = rs or load_slice()
    res = {"set": str(Path(rs.name).name) if rs.name else None, "questions": len(rs.questions),
           "paragraphs": len(rs.paragraphs), "articles": rs.articles,
           "teacher": score_teacher(teacher_dir, tokenizer, rs, cache_dir),
           "initial": cut_scores if cut_scores is not None else score_model(cut, tokenizer, rs)}
    if student is not None:
        add_student(res, student, tokenizer, teacher_dir, cache_dir, rs)
    return res


def add_student(res: dict, student: Any, tokenizer: Any, teacher_dir: str, cache_dir: str | os.PathLike,
                rs: RetrievalSet | None = None) -> dict:
    """Score the trained student into ``res`` (an :func:`evaluate_run` result on the same set): its numbers,
    the metrics on which it does not beat the untrained cut, and its MRR as a share of the teacher's with the
    interval of that share."""
    rs = rs or load_slice()
    s_ranks = model_ranks(student, tokenizer, rs)
    res["student"] = metrics_of(s_ranks, rs)
    res["below_untrained_cut"] = below_cut(res["student"], res["initial"])
    res["student_mrr_share"] = mrr_share(s_ranks, teacher_ranks(teacher_dir, tokenizer, rs, cache_dir))
    return res


def table(r: dict) -> list[str]:
    """Console lines: untrained cut / student / teacher, then share of the teacher's MRR."""
    has_s = "student" in r
    lines = [f"question -> paragraph retrieval (SQuAD v1.1 dev slice: {r['questions']} questions, "
             f"{r['paragraphs']} candidate paragraphs):",
             f"  {'':<28}{'untrained cut':>14}" + (f"{'student':>10}" if has_s else "") + f"{'teacher':>10}"]
    for m in RETRIEVAL_METRICS:
        line = f"  {LABELS[m]:<28}{r['initial'][m]:>14.4f}"
        if has_s:
            line += f"{r['student'][m]:>10.4f}"
        lines.append(line + f"{r['teacher'][m]:>10.4f}")
    from edgekit.distill.card import share_text

    share = share_text(r)
    if share:
        lines.append(f"  student MRR = {share}")
    return lines


def warning(r: dict) -> str | None:
    worse = r.get("below_untrained_cut")
    if not worse:
        return None
    return (f"WARNING: the trained student does not beat the untrained layer cut on retrieval "
            f"{', '.join(LABELS[m] for m in worse)} (SQuAD question -> paragraph): the training text or objective "
            f"may not suit this use; the card records this as retrieval.below_untrained_cut")


def after_training(cfg: TrainConfig, res: TrainResult) -> dict | None:
    """``distill train`` with an encoder-only teacher: untrained cut vs student vs teacher retrieval, printed
    and written into the card. None (nothing scored) when the run stopped early (a checkpoint only), wrote
    no card, or distilled a masked-LM teacher (its student is not a sentence encoder)."""
    import sys

    from edgekit.distill.card import CARD_JSON, write_card
    from edgekit.distill.student import load_tokenizer

    out = Path(res.out)
    card_path = out / CARD_JSON
    if res.steps < cfg.steps or not card_path.is_file():
        return None  # stopped early (checkpoint only) or --no-card
    card = json.loads(card_path.read_text())
    if card.get("teacher_kind") != "encoder":
        return None  # masked-LM students are not sentence encoders
    tok = load_tokenizer(out)
    r = evaluate_run(cfg.teacher, cfg.student, out, tok, cfg.cache_dir)
    hist = out / "train_history.json"
    card["retrieval"] = r
    write_card(out, card, json.loads(hist.read_text()) if hist.is_file() else [])
    print("\n".join(table(r)))
    w = warning(r)
    if w:
        print(w, file=sys.stderr)
    return r


if __name__ == "__main__":  # python -m edgekit.distill.retrieval DEV_FILE: regenerate the shipped slice
    import sys

    made = make_slice(sys.argv[1])
    print(made, made.stat().st_size, slice_label(load_slice(made)))
