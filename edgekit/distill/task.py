"""Task training: task-specific distillation (DistilBERT's "D" variant) and, with no teacher, plain fine-tuning.

One loop for both (``edgekit distill task`` and ``edgekit finetune``): with a teacher the loss is the
distillation loss below; without one it is the task loss alone. The loop fits a linear warm-up/decay
schedule to a step or wall-clock budget, runs under bf16 autocast where the CPU has native bf16, and
writes checkpoints (``edgekit.distill.train.save_checkpoint``: model, optimizer, scheduler, RNG and the
data order) from which ``--resume`` continues exactly.

Loss = alpha_ce x KL(teacher_T || student_T) x T^2 on the task logits + alpha_task x the task's own loss
(defaults 0.5 / 0.5, T = 2) [+ alpha_hid x the mean cosine distance between every student layer's output and
the teacher's output at the same relative depth, the last to the last (TinyBERT's uniform map: a 3-layer
student of a 6-layer teacher meets the teacher's layers 2, 4, 6), over the real tokens; off by default]
[+ alpha_general x the general phase's loss below on the task's own windows; off by default].
Question answering distils start and end logits (over the real tokens of each window); sequence
classification distils the class logits.

BERT teachers receive the real ``token_type_ids`` of sentence pairs (question/context, premise/hypothesis)
while the DistilBERT student, which has no token types, receives only ids and mask. Code that hands one
tokenizer output to both models (or drops token types for both, as Trainer-based scripts tend to) gives the
teacher inputs it was never trained on.

General distillation (``phase="general"``, ``edgekit distill general``): the DistilBERT recipe's first phase,
run on the task student before its task. The data is unlabelled text (one sentence per line, plain or
.xz/.gz/.bz2); consecutive lines are packed into paragraphs of at least ``GENERAL_MIN_WORDS`` words, each laid
out as the task's input (question answering: its first sentence as segment A, the rest as segment B, as a
question and its context are), and the loss is the squared error between the student's and the teacher's
final hidden states, summed over the hidden dimensions and averaged over the real tokens. No labels, no KL:
the task phase follows from the folder it writes.

Data: JSON lines (or a JSON list). Sequence classification: ``{"text": ..., "text_pair": ... (optional),
"label": int or label name}``. Question answering: ``{"question": ..., "context": ..., "answers": {"text":
[...], "answer_start": [...]}}`` per line, or an official SQuAD v1.1 file (``{"data": [articles]}``, plain
or ``.xz``). QA windows: question first, then the context cut into windows of ``max_len`` tokens with
``doc_stride`` tokens of overlap; the answer's character span becomes a token span; a window that does not
hold the whole answer points at [CLS].
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from edgekit.quality.data import read_records  # noqa: F401 - the one task-data reader
from edgekit.core.errors import ModelLoadError, UsageError
from edgekit.core.tasks import Task, task_names
from edgekit.distill.train import ABSENT

QA = "question-answering"
SEQ_CLS = "sequence-classification"
TASKS = (QA, SEQ_CLS)
# Every name of the two tasks (full names and the short ones of the one table, edgekit.core.tasks.ALIASES).
_ALIASES = {n: Task.parse(n).value for n in task_names([Task.QUESTION_ANSWERING, Task.SEQUENCE_CLASSIFICATION])}
#: Every name ``TaskConfig.task`` accepts.
TASK_NAMES = tuple(sorted(_ALIASES))


#: What a run trains: the task (labelled data; KL to the teacher + the task loss) or the general
#: distillation before it (unlabelled text; the teacher's final hidden states).
TASK_PHASE, GENERAL = "task", "general"
PHASES = (TASK_PHASE, GENERAL)
#: General distillation packs consecutive lines of its text into paragraphs of at least this many words: the
#: length of a SQuAD context (benchmarks/general_distill_qa.py, the probe measured in squad_quality.md).
GENERAL_MIN_WORDS = 170

#: Overlap of QA training windows (tokens) in every recipe; a shorter window takes half its length.
RECIPE_STRIDE = 128

#: The training recipe behind every default of a task run, in one place: ``TaskConfig`` (the Python API),
#: the flags of ``edgekit distill task`` and ``edgekit finetune``, and ``edgekit shrink``. Keyed by (task,
#: distillation?). Measured on SQuAD v1.1 (benchmarks/results/squad_quality.md): the 3-layer student of a
#: 6-layer teacher, one epoch, gained +1.94 F1 [+1.35, +2.55] on all 5,397 DEV questions without dropout
#: and another +1.77 [+1.23, +2.29] at lr 2e-4 rather than 1e-4 (3e-4: +0.35 [-0.15, +0.86] more, within the
#: noise). Fine-tuning alone keeps the shared minilm-l6-squad model's card (lr 1e-4, its dropout): the
#: recipe whose reproduction is measured there. Classification (small data, several epochs, exported at
#: 128 tokens) keeps lr 1e-4 and its model's dropout: not measured on real data. A ``dropout`` of None keeps
#: the model's own.
RECIPES: dict[tuple[str, bool], dict[str, Any]] = {
    (QA, True): {"max_len": 256, "batch_size": 32, "lr": 2e-4, "weight_decay": 0.01, "dropout": 0.0},
    (QA, False): {"max_len": 256, "batch_size": 32, "lr": 1e-4, "weight_decay": 0.01, "dropout": None},
    (SEQ_CLS, True): {"max_len": 128, "batch_size": 32, "lr": 1e-4, "weight_decay": 0.01, "dropout": None},
    (SEQ_CLS, False): {"max_len": 128, "batch_size": 32, "lr": 1e-4, "weight_decay": 0.01, "dropout": None},
}


#: The ``TaskConfig`` fields a recipe sets: those of ``RECIPES`` and the stride, which follows the window.
RECIPE_FIELDS = (*RECIPES[(QA, True)], "doc_stride")


class _Recipe:
    """The default of every ``TaskConfig`` field of ``RECIPES``: the task's recipe, filled in at construction
    (a sentinel, not None, because a ``dropout`` of None already means the model's own)."""

    def __repr__(self) -> str:
        return "RECIPE"


#: "The task's recipe": the default of every ``RECIPES`` field of ``TaskConfig``.
RECIPE: Any = _Recipe()


def _full_task(task: str) -> str:
    """The full name of ``task`` (any of ``TASK_NAMES``); another name is a usage error."""
    t = _ALIASES.get(task)
    if t is None:
        from edgekit.core.errors import unknown_choice

        raise unknown_choice("task", task, list(_ALIASES))
    return t


def recipe(task: str, distil: bool) -> dict[str, Any]:
    """The default training settings of ``task`` (any of ``TASK_NAMES``) for distillation (``distil``)
    or fine-tuning alone: a copy of its ``RECIPES`` entry."""
    return dict(RECIPES[(_full_task(task), bool(distil))])


@dataclass(frozen=True)
class TaskConfig:
    """Everything a task run depends on (``edgekit distill task``, and ``edgekit finetune`` with no teacher)."""

    task: str
    teacher: str | None               # None: plain fine-tuning (task loss only)
    student: str
    data: str
    out: str
    alpha_ce: float = 0.5
    alpha_task: float = 0.5
    temperature: float = 2.0
    alpha_hid: float = 0.0            # intermediate-layer alignment (hidden-state cosine); 0: off
    alpha_general: float = 0.0        # the general phase's loss (final hidden states' squared error); 0: off
    # RECIPE (or None): the task's recipe (``RECIPES``; doc_stride: 128, at most half of max_len)
    max_len: int = RECIPE
    doc_stride: int = RECIPE
    batch_size: int = RECIPE
    epochs: float = 1.0
    steps: int | None = None
    lr: float = RECIPE
    warmup: float = 0.1
    seed: int = 42
    max_examples: int | None = None
    progress: bool = True
    history: list = field(default_factory=list)
    budget_minutes: float | None = None  # wall-clock budget; the schedule is fitted to it (overrides epochs)
    weight_decay: float = RECIPE
    bf16: str = "auto"                # auto (when the CPU has native bf16) | yes | no
    checkpoint_every: int = 0         # steps; 0: none
    keep_checkpoints: int = 2
    resume: str | None = None         # a checkpoint folder or "auto"
    stop_after: int | None = None     # leave after this many steps of this session, with a checkpoint
    threads: int | None = None        # PyTorch threads, kept all run; None: the free cores, followed
    # every dropout of the student while training; None: the model's own; RECIPE: the task's recipe
    # (question-answering distillation 0, otherwise the model's own). A checkpoint from before this field
    # (2026-12-06) trained with the model's own (``ABSENT``: what ``recipe_changes`` compares it with).
    dropout: float | None = field(default=RECIPE, metadata={ABSENT: None})
    #: ``TASK_PHASE`` or ``GENERAL`` (``data`` is then unlabelled text); the general phase takes the task
    #: distillation's recipe (``RECIPES[(task, True)]``) and needs a teacher.
    phase: str = TASK_PHASE

    def __post_init__(self) -> None:
        t = _full_task(self.task)
        object.__setattr__(self, "task", t)  # the full name, whatever alias was given
        if self.phase not in PHASES:
            raise UsageError(f"phase must be one of {', '.join(PHASES)}, not {self.phase!r}")
        if self.phase == GENERAL and self.teacher is None:
            raise UsageError("general distillation learns a teacher's hidden states: give --teacher")
        for name, value in recipe(t, distil=self.teacher is not None).items():
            given = getattr(self, name)
            if given is RECIPE or (given is None and name != "dropout"):
                object.__setattr__(self, name, value)
        if self.doc_stride is RECIPE or self.doc_stride is None:
            object.__setattr__(self, "doc_stride", min(RECIPE_STRIDE, self.max_len // 2))
        # Every number is checked here, not where it is first used: a None, a zero batch or a negative
        # weight decay from the Python API would otherwise fail minutes later, inside torch, with a traceback.
        for name, low, strict, kind in _NUMBERS:
            _check_number(name, getattr(self, name), low, strict, kind)
        for name, low, strict, kind in _OPTIONAL_NUMBERS:
            if getattr(self, name) is not None:
                _check_number(name, getattr(self, name), low, strict, kind)
        if not self.warmup < 1:
            raise UsageError(f"--warmup-fraction is a fraction of the steps, in [0, 1), not {self.warmup}")
        if not 0 <= self.doc_stride <= self.max_len // 2:
            raise UsageError(f"--doc-stride ({self.doc_stride}) must be at most half of --seq-len ({self.max_len})")
        if self.bf16 not in ("auto", "yes", "no"):
            raise UsageError(f"--bf16 must be auto, yes or no, not {self.bf16!r}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise UsageError(f"--dropout must be in [0, 1), not {self.dropout}")


#: (field, lower bound, bound excluded?, type) of every number of ``TaskConfig`` that has no None meaning.
_NUMBERS = (("alpha_ce", 0, False, float), ("alpha_task", 0, False, float), ("temperature", 0, True, float),
            ("alpha_hid", 0, False, float), ("alpha_general", 0, False, float), ("max_len", 8, False, int),
            ("doc_stride", 0, False, int), ("batch_size", 1, False, int), ("epochs", 0, True, float),
            ("lr", 0, True, float), ("warmup", 0, False, float), ("seed", -math.inf, False, int),
            ("weight_decay", 0, False, float), ("checkpoint_every", 0, False, int), ("keep_checkpoints", 1, False, int))


#: The same for the numbers whose None means "none" (no budget, no limit, the free cores).
_OPTIONAL_NUMBERS = (("budget_minutes", 0, True, float), ("steps", 1, False, int), ("threads", 1, False, int),
                     ("max_examples", 1, False, int), ("stop_after", 1, False, int))


#: The fields whose command-line flag is not their name (keep_checkpoints has none: Python API only).
_FLAGS = {"max_len": "--seq-len", "warmup": "--warmup-fraction", "keep_checkpoints": "keep_checkpoints"}


def _check_number(name: str, value: Any, low: float, strict: bool, kind: type) -> None:
    """A usage error, named by the field's flag, unless ``value`` is a number of ``kind`` (an int for ``int``)
    at least ``low`` (above it when ``strict``)."""
    flag = _FLAGS.get(name, "--" + name.replace("_", "-"))
    ok_type = isinstance(value, int) if kind is int else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or value != value:  # bools are ints; NaN is a float
        raise UsageError(f"{flag} must be {'an integer' if kind is int else 'a number'}, not {value!r}")
    if value < low or (strict and value == low):
        bound = "positive" if strict and low == 0 else f"{'above' if strict else 'at least'} {low}"
        raise UsageError(f"{flag} must be {bound}, not {value!r}")


def _check_weights(path: str) -> None:
    """A local folder's weights are readable and hold tensors only (a code-carrying pickle is a
    ModelLoadError, exit 2, before transformers' loader raises its own traceback)."""
    from edgekit.model.preflight import check_model, looks_local

    if looks_local(str(path)):
        check_model(path)


def load_task_teacher(path: str, task: str) -> Any:
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    cls = AutoModelForQuestionAnswering if task == QA else AutoModelForSequenceClassification
    _check_weights(path)
    try:
        m = cls.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"could not load a fine-tuned {task} teacher from {path}: {e}") from e
    if m.config.model_type not in ("bert", "distilbert"):
        raise UsageError(f"teacher is a {m.config.model_type!r} model; BERT or DistilBERT teachers are supported")
    return m.eval()


def load_task_student(path: str, task: str, teacher: Any, labels: Any = None, dropout: float | None = None) -> Any:
    """The student (BERT or DistilBERT) with a task head; labels come from the teacher, else from ``labels``
    (anything with ``id2label``/``label2id``/``num_labels``, e.g. :func:`labels_from_rows`). ``dropout``
    replaces every dropout of its config (the saved model's config then says so)."""
    import logging

    from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    try:
        cfg = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"no model config in {path}: {e}") from None
    _check_weights(path)
    if cfg.model_type not in ("bert", "distilbert"):
        raise UsageError(f"student {path} is a {cfg.model_type!r} model; give a BERT or DistilBERT folder "
                         "(e.g. from `edgekit distill` or `edgekit distill init`)")
    # A base model has no task head yet: transformers' "newly initialized" warning is expected here.
    logging.getLogger("transformers.modeling_utils").setLevel(logging.ERROR)
    drop: dict[str, float] = {}
    if dropout is not None:
        # every dropout the model has: encoder, attention and the task head (DistilBERT's heads have their own)
        names = (("dropout", "attention_dropout", "qa_dropout", "seq_classif_dropout") if cfg.model_type == "distilbert"
                 else ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"))
        drop = dict.fromkeys(names, float(dropout))
    if task == QA:
        return AutoModelForQuestionAnswering.from_pretrained(path, **drop)
    lc = teacher.config if teacher is not None else labels
    if lc is None:
        raise UsageError("sequence classification needs labels: from a teacher or from the data")
    return AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=lc.num_labels, id2label=dict(lc.id2label), label2id=dict(lc.label2id), **drop)


def init_task_student(teacher_path: str, out: str | os.PathLike, layers: list[int]) -> Path:
    """A shallower copy of a fine-tuned BERT task model: embeddings, the chosen ``layers`` and the task head.

    Unlike ``distill init`` (a DistilBERT student for general distillation), the student keeps the
    teacher's architecture, token types and tokenizer, so it takes the teacher's inputs and exports as is.
    """
    from transformers import AutoConfig, AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    from edgekit.distill.student import _check_layer_map

    cfg = AutoConfig.from_pretrained(teacher_path)
    if cfg.model_type != "bert":
        raise UsageError(f"init_task_student copies BERT layers; {teacher_path} is a {cfg.model_type!r} model")
    _check_layer_map(list(layers), cfg.num_hidden_layers)
    is_qa = any(a.endswith("ForQuestionAnswering") for a in cfg.architectures or [])
    cls = AutoModelForQuestionAnswering if is_qa else AutoModelForSequenceClassification
    teacher = cls.from_pretrained(teacher_path)
    scfg = AutoConfig.from_pretrained(teacher_path, num_hidden_layers=len(layers))
    student = cls.from_config(scfg)
    sd = {}
    for k, v in teacher.state_dict().items():
        if ".encoder.layer." in k:
            head, rest = k.split(".encoder.layer.", 1)
            i, tail = rest.split(".", 1)
            if int(i) not in layers:
                continue
            k = f"{head}.encoder.layer.{layers.index(int(i))}.{tail}"
        sd[k] = v
    missing, unexpected = student.load_state_dict(sd, strict=False)
    if [m for m in missing if not m.endswith("position_ids")] or unexpected:
        raise ModelLoadError(f"student init left tensors unmatched: missing {missing}, unexpected {unexpected}")
    out = Path(out)
    student.save_pretrained(out, safe_serialization=True)
    load_tokenizer_for(teacher_path).save_pretrained(out)
    (out / "edgekit_student.json").write_text(json.dumps({"teacher": str(teacher_path), "layer_map": list(layers)}))
    return out


def load_tokenizer_for(path: str) -> Any:
    from edgekit.distill.student import load_tokenizer

    return load_tokenizer(path)


def labels_from_rows(rows: list[dict]) -> Any:
    """Label names and ids from classification data: sorted names, or ``LABEL_i`` for integer labels."""
    from types import SimpleNamespace

    ys = [r.get("label") for r in rows]
    if any(y is None for y in ys):
        raise UsageError("sequence-classification records need a 'label'")
    if all(isinstance(y, int) and not isinstance(y, bool) for y in ys):
        names = [f"LABEL_{i}" for i in range(max(ys) + 1)]
    elif all(isinstance(y, str) for y in ys):
        names = sorted(set(ys))
    else:
        raise UsageError("labels must be all integers or all names")
    id2label = dict(enumerate(names))
    return SimpleNamespace(num_labels=len(names), id2label=id2label, label2id={v: k for k, v in id2label.items()})


ENCODE_CHUNK = 1024  # question-answering rows per tokenizer call in encode()


def encode(task: str, rows: list[dict], tokenizer: Any, teacher_config: Any, max_len: int,
           doc_stride: int) -> dict[str, list]:
    """Tokenise with token types (for the teacher) and targets: labels, or start/end token positions.

    ``teacher_config``: where the labels come from (the teacher's config, or :func:`labels_from_rows`).
    """
    if task == SEQ_CLS:
        if "text" not in rows[0]:
            raise UsageError("sequence-classification records need a 'text' field (and 'label')")
        texts = [r["text"] for r in rows]
        pairs = [r.get("text_pair") for r in rows]
        label2id = {str(k): int(v) for k, v in (teacher_config.label2id or {}).items()}
        labels = []
        for r in rows:
            y = r.get("label")
            if isinstance(y, str):
                if y not in label2id:
                    raise UsageError(f"label {y!r} is not one of the teacher's labels {sorted(label2id)}")
                y = label2id[y]
            if not isinstance(y, int) or not 0 <= y < teacher_config.num_labels:
                raise UsageError(f"label {y!r} is not a class index of the teacher (0..{teacher_config.num_labels - 1})")
            labels.append(y)
        enc = tokenizer(texts, pairs if any(p is not None for p in pairs) else None, truncation=True,
                        max_length=max_len, return_token_type_ids=True)
        return {"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"], "labels": labels}
    for k in ("question", "context", "answers"):
        if k not in rows[0]:
            raise UsageError(f"question-answering records need 'question', 'context' and 'answers' (missing {k!r})")
    import numpy as np

    # Chunks of rows, windows kept as small int32/int8 arrays: one tokenizer call on all of SQuAD
    # train (97k windows with offsets and token strings) raised peak RSS by 5.4 GB; this by 0.17 GB.
    ids, types, starts, ends = [], [], [], []
    for c in range(0, len(rows), ENCODE_CHUNK):
        chunk = rows[c:c + ENCODE_CHUNK]
        enc = _windows(chunk, tokenizer, max_len, doc_stride)
        s, e = _answer_tokens(enc, chunk)
        ids += [np.asarray(x, dtype=np.int32) for x in enc["input_ids"]]
        types += [np.asarray(x, dtype=np.int8) for x in enc["token_type_ids"]]
        starts += s
        ends += e
    return {"input_ids": ids, "token_type_ids": types, "start_positions": starts, "end_positions": ends}


def _windows(rows: list[dict], tokenizer: Any, max_len: int, doc_stride: int) -> Any:
    """Question-first windows of the context with ``doc_stride`` tokens of overlap, with character offsets."""
    try:
        return tokenizer([r["question"].lstrip() for r in rows], [r["context"] for r in rows],
                         truncation="only_second", max_length=max_len, stride=doc_stride,
                         return_overflowing_tokens=True, return_offsets_mapping=True, return_token_type_ids=True)
    except ValueError as e:  # e.g. a question longer than max_len - stride leaves no room for context
        raise UsageError(f"cannot window the question-answering data: {e}; raise --seq-len or lower "
                         "--doc-stride") from e


def _answer_tokens(enc: Any, rows: list[dict]) -> tuple[list[int], list[int]]:
    """Start/end token of the first gold answer in each window; (0, 0), i.e. [CLS], where it is not inside."""
    starts, ends = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        r = rows[enc["overflow_to_sample_mapping"][i]]
        seq_ids = enc.sequence_ids(i)
        ans = r["answers"]
        if not ans["answer_start"]:
            starts.append(0)
            ends.append(0)
            continue
        a0 = ans["answer_start"][0]
        a1 = a0 + len(ans["text"][0])
        ctx = [j for j, s in enumerate(seq_ids) if s == 1]
        if not ctx or offsets[ctx[0]][0] > a0 or offsets[ctx[-1]][1] < a1:
            starts.append(0)  # answer not inside this window: point at [CLS], as SQuAD v2 training does
            ends.append(0)
            continue
        s = next(j for j in ctx if offsets[j][1] > a0)
        e = next(j for j in reversed(ctx) if offsets[j][0] < a1)
        starts.append(s)
        ends.append(e)
    return starts, ends


def general_texts(path: str, limit: int | None = None, min_words: int = GENERAL_MIN_WORDS) -> list[str]:
    """Paragraphs of the text file ``path`` (one sentence or paragraph per line; .xz/.gz/.bz2 decompressed):
    consecutive lines joined until they hold ``min_words`` words; the last, shorter one is dropped unless it
    is the only one. ``limit``: at most this many paragraphs."""
    from edgekit.distill.corpus import check_text_file, read_lines

    check_text_file(path)
    out: list[str] = []
    buf: list[str] = []
    words = 0
    for line in read_lines(path):
        buf.append(line)
        words += len(line.split())
        if words >= min_words:
            out.append(" ".join(buf))
            buf, words = [], 0
            if limit is not None and len(out) >= limit:
                break
    if not out and buf:
        out.append(" ".join(buf))
    return out


def as_pair(text: str) -> tuple[str, str]:
    """A paragraph laid out as a question and its context: the first sentence (segment A) and the rest
    (segment B); without a sentence end in the first 300 characters, the first 100 characters and the rest."""
    i = text.find(". ")
    return (text[: i + 1], text[i + 2:]) if 0 < i < 300 else (text[:100], text[100:])


def encode_general(task: str, texts: list[str], tokenizer: Any, max_len: int) -> dict[str, list]:
    """Token ids and types of unlabelled paragraphs laid out as ``task``'s input, cut at ``max_len`` tokens:
    question answering as (first sentence, rest) pairs (:func:`as_pair`), classification as single texts."""
    import numpy as np

    ids, types = [], []
    for c in range(0, len(texts), ENCODE_CHUNK):
        chunk = texts[c:c + ENCODE_CHUNK]
        if task == QA:
            pairs = [as_pair(t) for t in chunk]
            # "longest_first" cuts the longer segment token by token: the context, as the probe's "only_second"
            # did (the same ids for 2,999 of 3,000 Wikipedia paragraphs at 256), and also a first sentence
            # longer than what is left of the context, where "only_second" stops with an error
            enc = tokenizer([a for a, _ in pairs], [b for _, b in pairs], truncation="longest_first",
                            max_length=max_len, return_token_type_ids=True)
        else:
            enc = tokenizer(chunk, truncation=True, max_length=max_len, return_token_type_ids=True)
        ids += [np.asarray(x, dtype=np.int32) for x in enc["input_ids"]]
        types += [np.asarray(x, dtype=np.int8) for x in enc["token_type_ids"]]
    return {"input_ids": ids, "token_type_ids": types}


def collate(features: dict[str, list], idx: list[int], pad_id: int) -> dict[str, Any]:
    import torch

    L = max(len(features["input_ids"][i]) for i in idx)
    B = len(idx)
    ids = torch.full((B, L), pad_id, dtype=torch.long)
    tt = torch.zeros((B, L), dtype=torch.long)
    am = torch.zeros((B, L), dtype=torch.long)
    for b, i in enumerate(idx):
        n = len(features["input_ids"][i])
        ids[b, :n] = torch.as_tensor(features["input_ids"][i])
        tt[b, :n] = torch.as_tensor(features["token_type_ids"][i])
        am[b, :n] = 1
    out = {"input_ids": ids, "attention_mask": am, "token_type_ids": tt}
    for k in ("labels", "start_positions", "end_positions"):
        if k in features:
            out[k] = torch.tensor([features[k][i] for i in idx], dtype=torch.long)
    return out


def model_inputs(model: Any, batch: dict) -> dict[str, Any]:
    """What ``model`` takes of ``batch``: ids and mask, and the token types when it is a BERT model (a
    DistilBERT model has none)."""
    kw = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if getattr(model.config, "model_type", None) == "bert":
        kw["token_type_ids"] = batch["token_type_ids"]
    return kw


def teacher_logits(teacher: Any, batch: dict, task: str, hidden: bool = False) -> dict[str, Any]:
    """Teacher logits under inference mode; BERT teachers get their token types, DistilBERT ones cannot.

    ``hidden``: also ``"hidden"``, every layer's output (embeddings first), for the ``alpha_hid`` and
    ``alpha_general`` terms.
    """
    import torch

    with torch.inference_mode():
        out = teacher(**model_inputs(teacher, batch), output_hidden_states=hidden)
    res = ({"start": out.start_logits.clone(), "end": out.end_logits.clone()} if task == QA
           else {"logits": out.logits.clone()})
    if hidden:
        res["hidden"] = tuple(h.clone() for h in out.hidden_states)
    return res


def student_outputs(student: Any, batch: dict, hidden: bool = False) -> Any:
    """The student's forward pass; a BERT student gets the token types a DistilBERT one does not have."""
    return student(**model_inputs(student, batch), output_hidden_states=hidden)


def layer_pairs(n_student: int, n_teacher: int) -> list[tuple[int, int]]:
    """(student hidden-state index, teacher hidden-state index) of the ``alpha_hid`` term: student layer k
    (1-based; index 0 is the embeddings) meets the teacher's output at the same relative depth, so the last
    meets the last, whose output the copied task head reads (TinyBERT's uniform map). Pairing a layer with
    the teacher layer it was copied from instead would pull the student's last layer towards an inner
    teacher layer while the KL pulls its head's output towards the teacher's last."""
    if n_student < 1 or n_teacher < n_student:
        raise UsageError(f"--alpha-hid needs a student no deeper than its teacher ({n_student} vs {n_teacher} layers)")
    return [(k, round(k * n_teacher / n_student)) for k in range(1, n_student + 1)]


def hidden_cos(s_hidden: tuple, t_hidden: tuple, mask: Any) -> Any:
    """Mean cosine distance over the real tokens of every :func:`layer_pairs` pair (0: aligned)."""
    from edgekit.distill.losses import layers_cos_sum

    D = s_hidden[0].shape[-1]
    if t_hidden[0].shape[-1] != D:
        raise UsageError(f"--alpha-hid needs the student's hidden size to equal the teacher's "
                         f"({D} vs {t_hidden[0].shape[-1]})")
    pairs = layer_pairs(len(s_hidden) - 1, len(t_hidden) - 1)
    tot, count = layers_cos_sum([(s_hidden[i], t_hidden[j]) for i, j in pairs], mask.reshape(-1).bool())
    return tot / count.clamp(min=1)


def final_sq_error(s_last: Any, t_last: Any, mask: Any) -> Any:
    """The general phase's loss: the squared error of the final hidden states, summed over the hidden
    dimensions and averaged over the real tokens (``mask``). Also the task phase's ``alpha_general`` term."""
    if t_last.shape[-1] != s_last.shape[-1]:
        raise UsageError(f"matching the teacher's final hidden states needs the student's hidden size to equal "
                         f"the teacher's ({s_last.shape[-1]} vs {t_last.shape[-1]})")
    return ((s_last.float() - t_last.float()) ** 2).sum(-1)[mask.bool()].mean()


def general_terms(student: Any, teacher: Any, batch: dict) -> dict[str, Any]:
    """The general phase's loss: ``{"hmse": :func:`final_sq_error`, "total": the same}`` (``ce``, ``task``,
    ``hid``: 0)."""
    import torch

    s_last = student_outputs(student, batch, hidden=True).hidden_states[-1]
    with torch.inference_mode():
        t_last = teacher(**model_inputs(teacher, batch), output_hidden_states=True).hidden_states[-1].clone()
    hmse = final_sq_error(s_last, t_last, batch["attention_mask"])
    zero = torch.zeros((), device=hmse.device)
    return {"ce": zero, "task": zero, "hid": zero, "hmse": hmse, "total": hmse, "teacher": None}


def task_terms(student: Any, teacher: Any, batch: dict, cfg: TaskConfig) -> dict[str, Any]:
    """``{"ce": KL term, "task": task loss, "hid": hidden-state term, "hmse": final hidden states' squared
    error, "total": weighted sum}`` (means over the batch).

    Without a teacher (plain fine-tuning) ``ce``, ``hid`` and ``hmse`` are 0 and ``total`` is the task loss;
    ``hid`` and ``hmse`` are computed only when their weight (``cfg.alpha_hid``, ``cfg.alpha_general``) is > 0.
    """
    import torch
    import torch.nn.functional as F

    from edgekit.distill.losses import task_kl_sum

    if cfg.phase == GENERAL:
        return general_terms(student, teacher, batch)
    want_hidden = teacher is not None and (cfg.alpha_hid > 0 or cfg.alpha_general > 0)
    out = student_outputs(student, batch, hidden=want_hidden)
    B = batch["input_ids"].shape[0]
    if cfg.task == QA:
        start, end = out.start_logits.float(), out.end_logits.float()
        task_loss = (F.cross_entropy(start, batch["start_positions"]) + F.cross_entropy(end, batch["end_positions"])) / 2
    else:
        logits = out.logits.float()
        task_loss = F.cross_entropy(logits, batch["labels"])
    if teacher is None:
        zero = torch.zeros((), device=task_loss.device)
        return {"ce": zero, "task": task_loss, "hid": zero, "hmse": zero, "total": task_loss, "teacher": None}
    t = teacher_logits(teacher, batch, cfg.task, hidden=want_hidden)
    T = cfg.temperature
    if cfg.task == QA:
        mask = batch["attention_mask"].bool()
        ce = (task_kl_sum(start, t["start"].float(), T, mask) + task_kl_sum(end, t["end"].float(), T, mask)) / (2 * B)
    else:
        ce = task_kl_sum(logits, t["logits"].float(), T) / B
    total = cfg.alpha_ce * ce + cfg.alpha_task * task_loss
    hid = hmse = torch.zeros((), device=task_loss.device)
    if want_hidden:
        t_hidden = t.pop("hidden")
        if cfg.alpha_hid > 0:
            hid = hidden_cos(out.hidden_states, t_hidden, batch["attention_mask"])
            total = total + cfg.alpha_hid * hid
        if cfg.alpha_general > 0:
            hmse = final_sq_error(out.hidden_states[-1], t_hidden[-1], batch["attention_mask"])
            total = total + cfg.alpha_general * hmse
    return {"ce": ce, "task": task_loss, "hid": hid, "hmse": hmse, "total": total, "teacher": t}


def _holder(student: Any) -> Any:
    """What the shared checkpoint functions expect: a module whose ``.student`` is the trained model."""
    from torch import nn

    holder = nn.Module()
    holder.student = student
    return holder


class _Schedule:
    """Linear warm-up then linear decay to 0 over ``total`` steps; ``total`` may be fixed after a timing probe."""

    def __init__(self, total: int | None, warmup: float, probe_warm: int = 100) -> None:
        self.total, self.warmup, self.probe_warm = total, warmup, probe_warm

    def __call__(self, step: int) -> float:
        if self.total is None:  # timing probe of a wall-clock budget: the start of a warm-up
            return (step + 1) / self.probe_warm
        warm = max(1, int(self.warmup * self.total))
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (self.total - step) / max(1, self.total - warm))


PROBE_STEPS = 5
#: ``TaskConfig`` fields a resumed run may set otherwise: where the folders are (a run may move) and how this
#: session runs. Every other field is the recipe, which a resumed run keeps (``distill.train.recipe_changes``);
#: whether there is a teacher at all is checked apart (a distillation cannot go on as a plain fine-tune).
RESUME_MAY_CHANGE = frozenset({"teacher", "student", "data", "out", "progress", "history", "bf16",
                               "checkpoint_every", "keep_checkpoints", "resume", "stop_after", "threads"})
#: The distillation loss's fields: they train nothing without a teacher (``task_terms``), so a fine-tune's
#: checkpoint is not refused over them (``edgekit finetune`` wrote 0/1/0 for the weights until 2026-12-06,
#: the API the dataclass's defaults).
LOSS_FIELDS = frozenset({"alpha_ce", "alpha_task", "temperature", "alpha_hid", "alpha_general"})


def recipe_changes_since(checkpoint: Path, cfg: TaskConfig) -> dict[str, tuple[Any, Any]]:
    """The recipe fields ``cfg`` sets otherwise than the checkpoint's training: ``{field: (then, now)}``."""
    from edgekit.distill.train import recipe_changes, saved_config

    saved = saved_config(checkpoint)
    changes = recipe_changes(saved, cfg, RESUME_MAY_CHANGE | (LOSS_FIELDS if cfg.teacher is None else frozenset()))
    if (saved.get("teacher") is None) != (cfg.teacher is None):
        changes["teacher"] = (saved.get("teacher"), cfg.teacher)
    return changes


def started_recipe(cfg: TaskConfig, checkpoint: Path) -> tuple[TaskConfig, dict[str, tuple[Any, Any]]]:
    """``cfg`` with the recipe the checkpoint's training started with, and what that changed
    (``{field: (then, asked now)}``): for a caller that owns both runs (``edgekit shrink``, whose own options
    are checked on resume) and must continue a run begun under another version's recipe as it began."""
    changes = recipe_changes_since(checkpoint, cfg)
    return (replace(cfg, **{k: then for k, (then, _) in changes.items()}) if changes else cfg), changes


def distill_task(cfg: TaskConfig) -> dict:
    """Train the student on the task (distilled from ``cfg.teacher`` if given) and save it to ``cfg.out``."""
    import torch
    from accelerate import Accelerator
    from edgekit.core.console import progress

    from edgekit.distill.student import load_tokenizer, read_student_record, save_student
    from edgekit.model.preflight import resume_checkpoint
    from edgekit.distill.train import cpu_bf16_supported, load_checkpoint, refuse_recipe_changes

    acc = Accelerator(cpu=not torch.cuda.is_available())
    torch.manual_seed(cfg.seed)
    t_start = time.perf_counter()
    # Read before training, not after it: a damaged record of the starting folder stops the run at once.
    meta_in = read_student_record(cfg.student)
    out = Path(cfg.out)
    ckdir = out / "checkpoints"
    ck = None
    if cfg.resume:
        # A damaged checkpoint is named file by file; "auto" falls back to the newest good one. Checked before
        # the minute of loading and tokenising: a resumed run trains on as it started, or not at all.
        ck = resume_checkpoint(ckdir, cfg.resume, say=acc.print)
        if ck is None and cfg.resume != "auto":
            raise UsageError(f"checkpoint {cfg.resume} not found")
        if ck is not None:
            refuse_recipe_changes(ck, recipe_changes_since(ck, cfg))

    def say(what: str) -> None:  # start-up takes a minute or more on SQuAD: plain lines on stderr say what runs
        if acc.is_main_process:
            print(f"{what} ({time.perf_counter() - t_start:.0f} s)", file=sys.stderr, flush=True)

    if cfg.teacher:
        say(f"loading the teacher {cfg.teacher}")
    teacher = load_task_teacher(cfg.teacher, cfg.task).to(acc.device) if cfg.teacher else None
    say(f"reading {cfg.data}")
    general = cfg.phase == GENERAL
    rows = general_texts(cfg.data, cfg.max_examples) if general else read_records(cfg.data, cfg.max_examples)
    # The teacher's tokenizer when there is one: it emits the token types the teacher needs.
    tok = load_tokenizer(cfg.teacher or cfg.student)
    labels = teacher.config if teacher is not None else (labels_from_rows(rows) if cfg.task == SEQ_CLS else None)
    say(f"loading the student {cfg.student}")
    student = load_task_student(cfg.student, cfg.task, teacher, labels, cfg.dropout)
    if general:
        say(f"tokenising {len(rows):,} paragraphs of at least {GENERAL_MIN_WORDS} words ({cfg.max_len} tokens at most)")
        feats = encode_general(cfg.task, rows, tok, cfg.max_len)
    else:
        say(f"tokenising {len(rows):,} examples into windows of {cfg.max_len} tokens")
        feats = encode(cfg.task, rows, tok, labels, cfg.max_len, cfg.doc_stride)
    say(f"{len(feats['input_ids']):,} training {'paragraphs' if general else 'windows'}")
    n = len(feats["input_ids"])
    if n == 0:
        raise UsageError(f"{cfg.data} gave no training examples")
    bs = min(cfg.batch_size, n)
    per_epoch = max(1, n // bs)
    total: int | None = cfg.steps or (None if cfg.budget_minutes else max(1, math.ceil(cfg.epochs * per_epoch)))
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [
        {"params": [p for nm, p in student.named_parameters() if not any(k in nm for k in no_decay)],
         "weight_decay": cfg.weight_decay},
        {"params": [p for nm, p in student.named_parameters() if any(k in nm for k in no_decay)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=cfg.lr)
    schedule = _Schedule(total, cfg.warmup)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    student, opt = acc.prepare(student, opt)
    holder = _holder(student)
    bf16 = cfg.bf16 == "yes" or (cfg.bf16 == "auto" and acc.device.type == "cpu" and cpu_bf16_supported())
    g = torch.Generator().manual_seed(cfg.seed)
    step, elapsed0, history, order = 0, 0.0, [], []
    if ck is not None:
        st = load_checkpoint(acc, holder, opt, sched, ck)
        step, elapsed0, history, order = st["step"], st["elapsed"], st["history"], st["order"]
        schedule.total = total = st["total"]
        g.set_state(torch.tensor(st["generator"], dtype=torch.uint8))
        acc.print(f"resumed from {ck} at step {step}")
    student.train()
    what = "general distillation before" if general else "distilling" if teacher is not None else "fine-tuning"
    bar = progress(total, f"{what} {cfg.task}", unit="steps", initial=step,
                   enabled=cfg.progress and acc.is_main_process)
    t0 = time.perf_counter()
    session_start = step
    budget_s = cfg.budget_minutes * 60 if cfg.budget_minutes else None
    from edgekit.core.threads import Follower

    follow = Follower(pinned=cfg.threads)  # without a count of the caller's, the pool follows the free cores

    def elapsed() -> float:
        return elapsed0 + time.perf_counter() - t0

    while total is None or step < total:
        if budget_s is not None and elapsed() >= budget_s:
            break  # the budget is spent (the schedule is fitted to it; this only guards a slower machine)
        if cfg.stop_after is not None and step - session_start >= cfg.stop_after:
            break
        if len(order) < bs:
            order = torch.randperm(n, generator=g).tolist()
        idx, order = order[:bs], order[bs:]
        if acc.num_processes > 1:  # every process draws the same global batch and takes its share of it
            idx = idx[acc.process_index::acc.num_processes] or idx[:1]
        batch = {k: v.to(acc.device) for k, v in collate(feats, idx, tok.pad_token_id or 0).items()}
        with torch.autocast(acc.device.type, dtype=torch.bfloat16, enabled=bf16):
            terms = task_terms(student, teacher, batch, cfg)
        acc.backward(terms["total"])
        acc.clip_grad_norm_(student.parameters(), 1.0)
        lr = opt.param_groups[0]["lr"]  # the rate this step used
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        follow.step()
        rec = {"step": step, "loss": terms["total"].item(), "loss_ce": terms["ce"].item(),
               "loss_task": terms["task"].item(), "lr": lr, "elapsed_s": round(elapsed(), 2)}
        if cfg.alpha_hid > 0 and not general:
            rec["loss_hid"] = terms["hid"].item()
        if cfg.alpha_general > 0 and not general:
            rec["loss_general"] = terms["hmse"].item()
        history.append(rec)
        if total is None and step == PROBE_STEPS:
            # Fit the schedule to the wall-clock budget from the measured step time.
            per_step = elapsed() / step
            schedule.total = total = max(step + 1, int(budget_s / per_step))
            bar.reset(total=total)
            bar.update(step - 1)
        bar.set_postfix(loss=f"{rec['loss']:.4f}", refresh=False)
        bar.update(1)
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and (total is None or step < total):
            _save_ck(acc, holder, opt, sched, ckdir, step, total, elapsed(), history, order, g, cfg)
    bar.close()
    if total is not None and step < total and (budget_s is None or elapsed() < budget_s):
        _save_ck(acc, holder, opt, sched, ckdir, step, total, elapsed(), history, order, g, cfg)
        acc.print(f"stopped at step {step} of {total}; continue with --resume auto")
        return {"steps": step, "stopped": True, "checkpoint": str(ckdir)}
    el = elapsed()
    model = acc.unwrap_model(student)
    agree = (_agreement(model, teacher, feats, cfg, tok.pad_token_id or 0, acc.device)
             if teacher is not None and not general else None)
    card = {"task": cfg.task, "teacher": cfg.teacher, "student_init": cfg.student, "steps": step,
            "planned_steps": total, "examples": len(rows), "features": n, "batch_size": bs,
            "examples_seen": step * bs, "budget": ({"minutes": cfg.budget_minutes} if cfg.budget_minutes
                                                  else {"steps": cfg.steps or total}),
            "bf16_autocast": bf16, "lr": cfg.lr, "warmup": cfg.warmup, "weight_decay": cfg.weight_decay,
            "max_len": cfg.max_len, "doc_stride": cfg.doc_stride, "elapsed_s": round(el, 1),
            "threads": follow.card(), **({} if cfg.dropout is None else {"dropout": cfg.dropout}),
            "final": history[-1] if history else {}}
    if general:
        card.update({"phase": GENERAL, "text": cfg.data, "paragraph_min_words": GENERAL_MIN_WORDS,
                     "loss": "squared error of the final hidden states, summed over the hidden dimensions, "
                             "averaged over the real tokens",
                     "teacher_token_types": teacher.config.model_type == "bert"})
    elif teacher is not None:
        card.update({"loss_weights": {"ce": cfg.alpha_ce, "task": cfg.alpha_task,
                                      **({"hid": cfg.alpha_hid} if cfg.alpha_hid > 0 else {}),
                                      **({"general": cfg.alpha_general} if cfg.alpha_general > 0 else {})},
                     "temperature": cfg.temperature,
                     "teacher_agreement": agree, "teacher_token_types": teacher.config.model_type == "bert"})
    if acc.is_main_process:
        key = "general_distillation" if general else "task_distillation" if teacher is not None else "finetune"
        bert = getattr(model.config, "model_type", None) == "bert"
        # The record of the folder it started from (its layer map, an earlier phase's card) is kept beside this
        # run's: a task student after a general phase says both what it was cut from and how it was trained.
        meta = {k: v for k, v in meta_in.items() if k != key}
        if key in meta_in:
            # A second phase of the same kind (a general run continued from another, pseudo-pairs before the
            # labelled epoch) once replaced the first's card: the folder then hid part of its training.
            meta["earlier_phases"] = [*meta_in.get("earlier_phases", []), {key: meta_in[key]}]
        # save_student rewrites a BERT tokenizer for DistilBERT (no token types); a BERT student keeps its own.
        save_student(model, cfg.out, None if bert else tok, {**meta, key: card})
        if bert:
            tok.save_pretrained(cfg.out)
        from edgekit.core.record import atomic_write_text
        from edgekit.distill.card import plot_losses

        plot_losses(history, out / "loss_curve.png")
        atomic_write_text(out / f"{key}_card.json", json.dumps(
            {**card, "config": {k: v for k, v in asdict(cfg).items() if k != "history"}, "history": history},
            indent=2))
    return card


def _save_ck(acc: Any, holder: Any, opt: Any, sched: Any, ckdir: Path, step: int, total: int | None, elapsed: float,
             history: list, order: list, g: Any, cfg: TaskConfig) -> None:
    from edgekit.distill.train import save_checkpoint

    state = {"step": step, "total": total, "elapsed": elapsed, "history": history, "order": order,
             "generator": g.get_state().tolist(), "world_size": acc.num_processes,
             "config": {k: v for k, v in asdict(cfg).items() if k != "history"}}
    save_checkpoint(acc, holder, opt, sched, ckdir, step, state, cfg.keep_checkpoints)


def _agreement(student: Any, teacher: Any, feats: dict, cfg: TaskConfig, pad_id: int, device: Any,
               limit: int = 256) -> float:
    """Share of (up to ``limit``) training features where student and teacher predict the same answer/class."""
    import torch

    student.eval()
    n = min(limit, len(feats["input_ids"]))
    same = 0
    for s in range(0, n, 32):
        idx = list(range(s, min(n, s + 32)))
        batch = {k: v.to(device) for k, v in collate(feats, idx, pad_id).items()}
        t = teacher_logits(teacher, batch, cfg.task)
        with torch.inference_mode():
            o = student_outputs(student, batch)
        if cfg.task == QA:
            same += int(((o.start_logits.argmax(-1) == t["start"].argmax(-1))
                         & (o.end_logits.argmax(-1) == t["end"].argmax(-1))).sum())
        else:
            same += int((o.logits.argmax(-1) == t["logits"].argmax(-1)).sum())
    return same / max(1, n)
