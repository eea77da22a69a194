"""``edgekit distill`` (the embedded default run and the init / train / task / compare sub-commands) and
``edgekit finetune``: the command-line layer over ``edgekit.distill``.

Each command turns its flags into the distill package's typed options (``DefaultOptions``,
``TrainConfig``, ``TaskConfig``) and calls one library function. Nothing heavy is imported until a
command runs, so registering the parsers costs nothing.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgekit.core.errors import UsageError

if TYPE_CHECKING:
    from edgekit.distill.default import DefaultOptions
    from edgekit.distill.task import TaskConfig
    from edgekit.distill.train import TrainConfig, TrainResult


#: The training commands' --threads (distill, distill train, distill task, finetune).
THREADS_HELP = ("PyTorch threads, kept for the whole run (default: the cores not busy with other work, re-chosen as "
                "the machine's load changes)")


def _layers(s: str | None) -> list[int] | None:
    """``--layers 0,2,4``: teacher layer indices (None when not given)."""
    if not s:
        return None
    try:
        return [int(x) for x in s.replace(" ", "").split(",") if x]
    except ValueError:
        raise UsageError(f"--layers must be comma-separated integers like 0,2,4, not {s!r}") from None


# ---- edgekit distill ----------------------------------------------------------------------------

def add_parser(subparsers: Any) -> None:
    """Register ``distill`` and its sub-commands on the top-level ``edgekit`` sub-parsers."""
    from edgekit.cli.vocabulary import retired
    from edgekit.distill.default import (
        CORPORA,
        DEFAULT_CORPUS,
        DEFAULT_LAYERS,
        DEFAULT_OBJECTIVE,
        DEFAULT_OUT,
        OBJECTIVES,
        DefaultOptions,
    )
    from edgekit.distill.train import DEFAULT_CACHE

    d = DefaultOptions()
    p = subparsers.add_parser(
        "distill", help="distil a BERT-family teacher into a half-depth DistilBERT student",
        description="Without a sub-command: distil the embedded all-MiniLM-L6-v2 (6 layers) into a 3-layer "
                    "student on text shipped with edgekit, then score the untrained layer cut and the student "
                    "against the teacher on 5,000 held-out sentences, and cut, student and teacher on SQuAD "
                    "question -> paragraph retrieval (300 shipped dev questions: R@1, R@5, MRR). No download.")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: ./{DEFAULT_OUT})")
    p.add_argument("--steps", type=int, default=d.steps,
                   help=f"optimizer steps (default {d.steps}: under 10 min on 2 cores)")
    p.add_argument("--batch-size", type=int, default=d.batch_size,
                   help=f"sequences per optimizer step (default {d.batch_size})")
    p.add_argument("--seq-len", dest="max_len", type=int, metavar="N", default=d.max_len,
                   help=f"training sequence length in tokens (default {d.max_len})")
    retired(p, "--max-len", "--seq-len")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate (default {d.lr:g})")
    p.add_argument("--student-layers", type=int, default=d.student_layers,
                   help=f"layers of the student (default {d.student_layers})")
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
    p.add_argument("--held-out", type=int, default=d.held_out,
                   help=f"held-out sentences scored (at most {d.held_out})")
    p.add_argument("--cache-dir", default=str(DEFAULT_CACHE),
                   help=f"token and teacher cache folder (default {DEFAULT_CACHE})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    p.add_argument("--mixed-precision", default=d.mixed_precision, choices=["auto", "no", "bf16"],
                   help="training autocast: auto = bf16 on CPUs with bf16 instructions, else fp32; no = fp32 "
                        f"(default {d.mixed_precision})")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every,
                   help=f"write a checkpoint every N steps (default {d.checkpoint_every}: none)")
    p.add_argument("--stop-after", type=int, default=None, help="leave after N steps with a checkpoint")
    p.add_argument("--resume", default=None, help="'auto' or a checkpoint folder")
    p.add_argument("--threads", type=int, default=None, help=THREADS_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--no-retrieval", action="store_true",
                   help="skip the SQuAD question -> paragraph retrieval score (shipped 300-question slice)")
    p.set_defaults(func=run_default)
    sub = p.add_subparsers(dest="distill_command", metavar="{init,train,task,general,compare}")

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
    add_task_args(q)
    q.set_defaults(func=run_task)

    q = sub.add_parser(
        "general", help="general distillation of a task student on unlabelled text, before `distill task`",
        description="The DistilBERT recipe's first phase for a task student (e.g. the output of `edgekit distill "
                    "init` or `init_task_student`): it learns the teacher's final hidden states on plain text "
                    "(one sentence per line; consecutive lines packed into paragraphs, laid out as the task's "
                    "input: for qa the first sentence as the question, the rest as the context). Then run "
                    "`edgekit distill task --student OUT`. Measured on SQuAD: benchmarks/results/squad_quality.md, "
                    "'General distillation before the task'.")
    add_task_args(q, general=True)
    q.set_defaults(func=run_task, phase="general")

    q = sub.add_parser("compare", help="compare student and teacher sentence embeddings on held-out text")
    q.add_argument("--student", required=True, help="student model folder")
    q.add_argument("--teacher", required=True, help="teacher model folder")
    q.add_argument("--texts", required=True, help="text file, one sentence per line")
    q.add_argument("--seq-len", dest="max_len", type=int, metavar="N", default=128,
                   help="sequence length in tokens; longer texts are cut (default 128)")
    retired(q, "--max-len", "--seq-len")
    q.set_defaults(func=run_compare)


def default_options(ns: argparse.Namespace) -> DefaultOptions:
    """``edgekit distill``'s flags as ``edgekit.distill.default.DefaultOptions``."""
    from edgekit.distill.default import DefaultOptions

    layers = _layers(ns.layers)
    return DefaultOptions(out=ns.out, steps=ns.steps, batch_size=ns.batch_size, max_len=ns.max_len, lr=ns.lr,
                          student_layers=ns.student_layers, layers=tuple(layers) if layers else None,
                          corpus=ns.corpus, objective=ns.objective,
                          data=tuple(ns.data) if ns.data else None, max_texts=ns.max_texts,
                          held_out=ns.held_out, cache_dir=ns.cache_dir, seed=ns.seed,
                          mixed_precision=ns.mixed_precision, checkpoint_every=ns.checkpoint_every,
                          stop_after=ns.stop_after, resume=ns.resume, progress=not ns.no_progress,
                          retrieval=not ns.no_retrieval, threads=ns.threads)


def run_default(ns: argparse.Namespace) -> int:
    from edgekit.distill.default import distill_default

    distill_default(default_options(ns))
    return 0


def run_init(ns: argparse.Namespace) -> int:
    from edgekit.distill.student import init_student

    out, layer_map = init_student(ns.teacher, ns.out, layers=_layers(ns.layers), n_layers=ns.student_layers,
                                  kind=ns.teacher_kind)
    print(f"student written to {out} (teacher layers {layer_map})")
    return 0


# ---- edgekit distill train (and python -m edgekit.distill.train) ---------------------------------

def add_train_args(p: argparse.ArgumentParser, defaults: dict | None = None) -> None:
    """Flags shared by ``edgekit distill train`` and ``python -m edgekit.distill.train``."""
    from edgekit.cli.vocabulary import retired
    from edgekit.distill.train import TrainConfig
    from edgekit.distill.weights import LossWeights

    d = TrainConfig(teacher="", student="", out="")
    w = LossWeights()
    defaults = defaults or {}
    g = p.add_argument_group("model")
    g.add_argument("--teacher", required="teacher" not in defaults, default=defaults.get("teacher"),
                   help="teacher model folder (BERT masked-LM, BERT encoder or DistilBERT)")
    g.add_argument("--student", default=defaults.get("student"),
                   help="student folder from `edgekit distill init` (default: initialise one from the teacher)")
    g.add_argument("--student-layers", type=int, default=None, help="layers of a student initialised here")
    g.add_argument("--layers", default=None, help="teacher layers to copy, e.g. 0,2,4,7,9,11")
    g.add_argument("--out", required="out" not in defaults, default=defaults.get("out"), help="output folder")
    g = p.add_argument_group("data")
    g.add_argument("--data", nargs="+", default=None, help="text files, one text per line")
    g.add_argument("--dataset", default=None, help="a `datasets` dataset name or local path")
    g.add_argument("--dataset-config", default=None, help="the dataset's configuration name")
    g.add_argument("--dataset-split", default="train", help="the dataset's split (default train)")
    g.add_argument("--dataset-files", nargs="+", default=None,
                   help="data_files for --dataset (e.g. --dataset json --dataset-files corpus-*.jsonl)")
    g.add_argument("--text-column", default="text", help="the dataset's text column (default text)")
    g.add_argument("--streaming", action="store_true", help="stream the dataset (corpora bigger than RAM)")
    g.add_argument("--cache-dir", default=d.cache_dir, help="token cache folder (Arrow)")
    g.add_argument("--max-texts", type=int, default=defaults.get("max_texts"), help="use only the first N texts")
    g.add_argument("--seq-len", dest="max_len", type=int, metavar="N", default=defaults.get("max_len", d.max_len),
                   help=f"training sequence length in tokens (default {defaults.get('max_len', d.max_len)})")
    retired(g, "--max-len", "--seq-len")
    g.add_argument("--min-tokens", type=int, default=d.min_tokens, help="drop sequences shorter than this")
    g.add_argument("--no-group-by-length", action="store_true", help="batch in random order, not by similar length")
    g.add_argument("--drop-held-out", action="store_true",
                   help="skip the sentences of the shipped held-out set (and copies of them) while tokenising")
    g = p.add_argument_group("optimisation")
    g.add_argument("--batch-size", type=int, default=defaults.get("batch_size", d.batch_size),
                   help="sequences per process per micro-step")
    g.add_argument("--grad-accum", type=int, default=d.grad_accum, help="micro-steps per optimizer step")
    g.add_argument("--steps", type=int, default=defaults.get("steps", d.steps), help="optimizer steps")
    g.add_argument("--lr", type=float, default=defaults.get("lr", d.lr), help="peak learning rate")
    g.add_argument("--warmup-fraction", dest="warmup", type=float, metavar="FRACTION", default=d.warmup,
                   help=f"fraction of the steps with linear warm-up (default {d.warmup})")
    retired(g, "--warmup", "--warmup-fraction")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay, help="AdamW weight decay")
    g.add_argument("--max-grad-norm", type=float, default=d.max_grad_norm, help="gradient clipping norm")
    g.add_argument("--seed", type=int, default=d.seed, help="random seed")
    g.add_argument("--dropout", type=float, default=None, help="override the student's dropout")
    g.add_argument("--mixed-precision", default=d.mixed_precision, choices=["auto", "no", "bf16", "fp16"],
                   help="training autocast: auto = bf16 on CPUs with bf16 instructions (GPUs: Accelerate's "
                        f"default), else fp32; no = fp32 (default {d.mixed_precision})")
    g.add_argument("--cpu", action="store_true", help="train on CPU even if a GPU is present")
    g = p.add_argument_group("loss")
    g.add_argument("--alpha-ce", type=float, default=w.ce, help=f"soft-target KL weight (default {w.ce:g})")
    g.add_argument("--alpha-mlm", type=float, default=w.mlm, help=f"masked-LM loss weight (default {w.mlm:g})")
    g.add_argument("--alpha-cos", type=float, default=w.cos,
                   help="hidden-state cosine (default 1 for masked-LM teachers, 0 for encoder-only ones)")
    g.add_argument("--alpha-mse", type=float, default=w.mse, help="encoder-only teachers: pooled-embedding MSE "
                   "(default 0)")
    g.add_argument("--alpha-nmse", type=float, default=w.nmse, help="encoder-only teachers: MSE of the normalised "
                   "pooled embeddings (default 1)")
    g.add_argument("--alpha-hmse", type=float, default=w.hmse, help="encoder-only teachers: token-level hidden "
                   "MSE (default 0)")
    g.add_argument("--alpha-rel", type=float, default=w.rel, help="encoder-only teachers: MSE of the in-batch "
                   "cosine-similarity matrices (default 0)")
    g.add_argument("--alpha-rkl", type=float, default=w.rkl, help="encoder-only teachers: KL of the in-batch "
                   "similarity softmax at T=0.05 (default 0)")
    g.add_argument("--alpha-hid", type=float, default=w.hid, help="encoder-only teachers: token cosine distance "
                   "of every student layer to the teacher layer it was copied from (default 0)")
    g.add_argument("--temperature", type=float, default=w.temperature,
                   help=f"softmax temperature of the KL term (default {w.temperature:g})")
    g.add_argument("--restrict-ce-to-mask", action="store_true", help="KL only at masked positions (faster)")
    g.add_argument("--mlm-prob", type=float, default=d.mlm_prob, help=f"share of tokens masked (default {d.mlm_prob})")
    g.add_argument("--mlm-smoothing", type=float, default=d.mlm_smoothing,
                   help=f"masking probability ~ token count^-x, this x (default {d.mlm_smoothing})")
    g = p.add_argument_group("checkpoints")
    g.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, help="steps between checkpoints")
    g.add_argument("--keep-checkpoints", type=int, default=d.keep_checkpoints,
                   help=f"newest checkpoints kept (default {d.keep_checkpoints})")
    g.add_argument("--resume", default=None, help="checkpoint folder, or 'auto' for the latest in OUT/checkpoints")
    g.add_argument("--stop-after", type=int, default=None,
                   help="leave after N steps of this session with a checkpoint (for time-limited jobs)")
    g.add_argument("--threads", type=int, default=None, help=THREADS_HELP)
    g.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    g.add_argument("--no-card", action="store_true", help="write no distillation card (DISTILLATION.md, loss curve)")
    g.add_argument("--no-teacher-cache", action="store_true",
                   help="recompute the teacher every step instead of caching its pooled embeddings")


def train_config(ns: argparse.Namespace) -> TrainConfig:
    """``edgekit.distill.train.TrainConfig`` from the train flags. Without --student the student is
    OUT/init (initialised there from the teacher by ``edgekit.distill.train.run``)."""
    from edgekit.distill.train import TrainConfig
    from edgekit.distill.weights import LossWeights

    dataset = None
    if ns.dataset:
        dataset = {"name": ns.dataset, "config": ns.dataset_config, "split": ns.dataset_split,
                   "text_column": ns.text_column, "streaming": ns.streaming,
                   "data_files": ns.dataset_files}
    student = ns.student
    if not student:
        student = str(Path(ns.out) / "init")
    weights = LossWeights(ce=ns.alpha_ce, mlm=ns.alpha_mlm, cos=ns.alpha_cos, mse=ns.alpha_mse,
                          nmse=ns.alpha_nmse, hmse=ns.alpha_hmse, rel=ns.alpha_rel, rkl=ns.alpha_rkl,
                          hid=ns.alpha_hid, temperature=ns.temperature, restrict_ce_to_mask=ns.restrict_ce_to_mask)
    return TrainConfig(teacher=ns.teacher, student=student, out=ns.out, data=list(ns.data or []), dataset=dataset,
                       cache_dir=ns.cache_dir, max_texts=ns.max_texts, max_len=ns.max_len, min_tokens=ns.min_tokens,
                       batch_size=ns.batch_size, grad_accum=ns.grad_accum, steps=ns.steps, lr=ns.lr,
                       warmup=ns.warmup, weight_decay=ns.weight_decay, max_grad_norm=ns.max_grad_norm,
                       seed=ns.seed, weights=weights, mlm_prob=ns.mlm_prob, mlm_smoothing=ns.mlm_smoothing,
                       group_by_length=not ns.no_group_by_length, checkpoint_every=ns.checkpoint_every,
                       keep_checkpoints=ns.keep_checkpoints, resume=ns.resume, stop_after=ns.stop_after,
                       mixed_precision=ns.mixed_precision, cpu=ns.cpu,
                       dropout=ns.dropout, progress=not ns.no_progress, card=not ns.no_card,
                       drop_held_out=ns.drop_held_out, teacher_cache=not ns.no_teacher_cache, threads=ns.threads)


def _train(ns: argparse.Namespace) -> tuple[TrainConfig, TrainResult]:
    """(config, result) of a training run from the train flags."""
    from edgekit.distill.train import run

    cfg = train_config(ns)
    return cfg, run(cfg, layers=_layers(ns.layers), n_layers=ns.student_layers)


def run_train(ns: argparse.Namespace) -> int:
    cfg, res = _train(ns)
    print(f"saved {res.out}: {res.steps} steps, {res.tokens_seen:,} tokens, {res.tokens_per_s:,.0f} tokens/s, "
          f"final loss {res.final.get('loss', float('nan')):.4f}")
    if ns.no_retrieval or os.environ.get("RANK", "0") not in ("0", ""):
        return 0
    from edgekit.distill.retrieval import after_training

    after_training(cfg, res)
    return 0


def train_main(argv: list[str] | None = None) -> int:
    """``python -m edgekit.distill.train`` (and under ``accelerate launch -m`` / ``torchrun -m``)."""
    from edgekit.core.errors import EdgekitError
    from edgekit.distill import train as T

    p = argparse.ArgumentParser(prog="python -m edgekit.distill.train", description=(T.__doc__ or "").split("\n\n")[0])
    add_train_args(p)
    p.add_argument("--history-json", default=None, help="also write the per-step history here (rank 0)")
    ns = p.parse_args(argv)
    try:
        _, res = _train(ns)
    except EdgekitError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    if ns.history_json and os.environ.get("RANK", "0") in ("0", ""):
        Path(ns.history_json).write_text(json.dumps(res.history))
    if os.environ.get("RANK", "0") in ("0", ""):
        print(f"saved {res.out}  steps={res.steps}  tokens={res.tokens_seen}  tokens/s={res.tokens_per_s:,.0f}  "
              f"loss={res.final.get('loss', math.nan):.4f}")
    return 0


# ---- edgekit distill task and edgekit finetune --------------------------------------------------

#: The retired ``--bf16 {auto,yes,no}`` in ``--mixed-precision`` words.
_BF16_FLAG = {"auto": "auto", "yes": "bf16", "no": "no"}


def recipe_help(name: str, finetune: bool) -> str:
    """The default of one training setting per task, from ``edgekit.distill.task.RECIPES`` (the one source)."""
    from edgekit.distill.task import QA, SEQ_CLS, recipe

    def shown(v: Any) -> str:
        if v is None:
            return "the model's own"
        return f"{v:.0e}".replace("e-0", "e-") if 0 < v < 1e-3 else f"{v:g}"  # 2e-4, not 0.0002

    qa, cls = (recipe(t, distil=not finetune)[name] for t in (QA, SEQ_CLS))
    return shown(qa) if qa == cls else f"{shown(qa)} for qa, {shown(cls)} for seq-cls"


def add_task_args(p: argparse.ArgumentParser, finetune: bool = False, general: bool = False) -> None:
    """Flags of ``edgekit distill task`` (with ``finetune``, of ``edgekit finetune``: no teacher; with
    ``general``, of ``edgekit distill general``: unlabelled text, no loss weights, no windows' overlap)."""
    from dataclasses import fields

    from edgekit.cli.vocabulary import retired
    from edgekit.distill.task import GENERAL_MIN_WORDS, LOSS_FIELDS, RECIPE_STRIDE, TASK_NAMES, TaskConfig

    p.add_argument("--task", required=True, choices=sorted(TASK_NAMES), metavar="TASK",
                   help="the model's task: question-answering (qa) or sequence-classification (seq-cls)")
    if finetune:
        p.add_argument("--model", required=True, dest="student", metavar="MODEL",
                       help="BERT/DistilBERT folder to fine-tune (a base model: its task head is new)")
    else:
        p.add_argument("--teacher", required=True, help="fine-tuned BERT/DistilBERT teacher folder")
        p.add_argument("--student", required=True,
                       help="BERT/DistilBERT student folder (e.g. the output of edgekit distill or distill init)")
    if general:
        p.add_argument("--data", required=True,
                       help="plain text, one sentence per line (.xz/.gz/.bz2 decompressed), e.g. Wikipedia "
                            "sentences; consecutive lines are packed into paragraphs of at least "
                            f"{GENERAL_MIN_WORDS} words")
    else:
        p.add_argument("--data", required=True,
                       help='SQuAD v1.1 JSON (.json/.json.xz), or JSON lines: qa {"question", "context", "answers"}, '
                            'seq-cls {"text", "text_pair"?, "label"}')
    p.add_argument("--out", required=True, help="output folder: the trained model, its card and checkpoints")
    if not finetune and not general:
        # the loss's defaults are TaskConfig's (a flag not given is left out), so help and run cannot differ
        loss = {f.name: f.default for f in fields(TaskConfig) if f.name in LOSS_FIELDS}
        p.add_argument("--alpha-ce", type=float, default=None,
                       help=f"weight of the KL to the teacher (default {loss['alpha_ce']:g})")
        p.add_argument("--alpha-task", type=float, default=None,
                       help=f"weight of the task loss (default {loss['alpha_task']:g})")
        p.add_argument("--temperature", type=float, default=None,
                       help=f"softmax temperature of the KL (default {loss['temperature']:g})")
        p.add_argument("--alpha-hid", type=float, default=None,
                       help="weight of intermediate-layer alignment: cosine distance of every student layer's "
                            "output to the teacher's at the same relative depth, the last to the last (default "
                            f"{loss['alpha_hid']:g}: off)")
        p.add_argument("--alpha-general", type=float, default=None,
                       help="weight of the general phase's loss on the task's windows: squared error of the "
                            "student's final hidden states to the teacher's, summed over the hidden dimensions "
                            f"(default {loss['alpha_general']:g}: off)")
    p.add_argument("--seq-len", dest="max_len", type=int, metavar="N", default=None,
                   help=("paragraph length in tokens, longer ones are cut" if general else "window length in tokens")
                        + f" (default: {recipe_help('max_len', finetune)})")
    retired(p, "--max-len", "--seq-len")
    if not general:
        p.add_argument("--doc-stride", type=int, default=None,
                       help=f"overlap of consecutive context windows in tokens (default {RECIPE_STRIDE}, at most "
                            "half of --seq-len)")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"{'paragraphs' if general else 'windows'} per optimizer step "
                        f"(default: {recipe_help('batch_size', finetune)})")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the data (default 1)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (overrides --epochs)")
    p.add_argument("--budget-minutes", type=float, default=None,
                   help="wall-clock budget: the warm-up/decay schedule is fitted to it (overrides --epochs)")
    p.add_argument("--lr", type=float, default=None,
                   help=f"peak learning rate (default: {recipe_help('lr', finetune)})")
    p.add_argument("--warmup-fraction", dest="warmup", type=float, metavar="FRACTION", default=0.1,
                   help="fraction of the steps with linear warm-up (default 0.1)")
    retired(p, "--warmup", "--warmup-fraction")
    p.add_argument("--weight-decay", type=float, default=None,
                   help=f"AdamW weight decay (default: {recipe_help('weight_decay', finetune)})")
    p.add_argument("--dropout", type=float, default=None,
                   help=f"every dropout of the student while training (default: {recipe_help('dropout', finetune)})")
    p.add_argument("--mixed-precision", default="auto", choices=["auto", "no", "bf16"],
                   help="training autocast: auto = bf16 on CPUs with native bf16 (never on GPU), no = fp32, "
                        "bf16 = always (default auto)")
    retired(p, "--bf16", "--mixed-precision", choices=["auto", "yes", "no"], convert=_BF16_FLAG.get)
    p.add_argument("--checkpoint-every", type=int, default=0, help="write a checkpoint every N steps")
    p.add_argument("--resume", default=None, help="a checkpoint folder, or auto (the latest under OUT/checkpoints)")
    p.add_argument("--stop-after", type=int, default=None,
                   help="leave after N steps of this session with a checkpoint (time slices)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--max-examples", type=int, default=None,
                   help=f"read only the first N {'paragraphs' if general else 'examples'} (default: all)")
    p.add_argument("--threads", type=int, default=None, help=THREADS_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def task_config(ns: argparse.Namespace) -> TaskConfig:
    """``edgekit.distill.task.TaskConfig`` from the task flags (no --teacher: fine-tuning, task loss only)."""
    from edgekit.distill.task import LOSS_FIELDS, RECIPE_FIELDS, TaskConfig

    # a flag not given (None) leaves its field at TaskConfig's default: the task's recipe (distill.task.RECIPES)
    # and the distillation loss's weights (finetune has no loss flags: without a teacher they train nothing)
    given = {f: getattr(ns, f, None) for f in (*RECIPE_FIELDS, *LOSS_FIELDS)}
    return TaskConfig(task=ns.task, teacher=getattr(ns, "teacher", None), student=ns.student, data=ns.data,
                      out=ns.out, epochs=ns.epochs, steps=ns.steps, warmup=ns.warmup,
                      seed=ns.seed, max_examples=ns.max_examples, progress=not ns.no_progress,
                      budget_minutes=ns.budget_minutes,
                      bf16={"bf16": "yes"}.get(ns.mixed_precision, ns.mixed_precision),
                      checkpoint_every=ns.checkpoint_every, resume=ns.resume, stop_after=ns.stop_after,
                      threads=ns.threads, phase=getattr(ns, "phase", "task"),
                      **{f: v for f, v in given.items() if v is not None})


def _print_task_card(out: str, card: dict) -> None:
    if card.get("stopped"):
        print(f"stopped at step {card['steps']}; checkpoint in {card['checkpoint']} (continue with --resume auto)")
        return
    line = f"saved {out}: {card['steps']} steps, {card['elapsed_s']:.0f} s, final loss {card['final']['loss']:.4f}"
    if card.get("teacher_agreement") is not None:
        line += f", student/teacher agreement {card['teacher_agreement']:.1%}"
    if card.get("phase") == "general":
        line += f"; next: edgekit distill task --student {out} ..."
    print(line)


def run_task(ns: argparse.Namespace) -> int:
    from edgekit.distill.task import distill_task

    cfg = task_config(ns)
    _print_task_card(cfg.out, distill_task(cfg))
    return 0


def add_finetune_parser(subparsers: Any) -> None:
    """Register ``finetune`` on the top-level ``edgekit`` sub-parsers (``edgekit.cli.finetune``)."""
    from edgekit.cli.vocabulary import plain
    from edgekit.distill import finetune

    doc = finetune.__doc__
    p = subparsers.add_parser(
        "finetune", help="fine-tune a BERT/DistilBERT model for question answering or classification (no teacher)",
        description=plain(doc.split("\n\n")[1]) if doc else None)
    add_task_args(p, finetune=True)
    p.set_defaults(func=run_finetune)


def run_finetune(ns: argparse.Namespace) -> int:
    from edgekit.core.console import quiet_backends
    from edgekit.distill.finetune import finetune

    quiet_backends()
    cfg = task_config(ns)
    _print_task_card(cfg.out, finetune(cfg))
    return 0


# ---- edgekit distill compare --------------------------------------------------------------------

def run_compare(ns: argparse.Namespace) -> int:
    from edgekit.distill.compare import compare_folders

    print(json.dumps(compare_folders(ns.student, ns.teacher, ns.texts, ns.max_len), indent=2))
    return 0
