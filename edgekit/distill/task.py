"""Task-specific distillation (DistilBERT's "D" variant): fine-tune a student against a fine-tuned teacher.

Loss = alpha_ce x KL(teacher_T || student_T) x T^2 on the task logits + alpha_task x the task's own loss
(defaults 0.5 / 0.5, T = 2). Question answering distils start and end logits (over the real tokens of each
window); sequence classification distils the class logits.

BERT teachers receive the real ``token_type_ids`` of sentence pairs (question/context, premise/hypothesis)
while the DistilBERT student, which has no token types, receives only ids and mask. Code that hands one
tokenizer output to both models (or drops token types for both, as Trainer-based scripts tend to) gives the
teacher inputs it was never trained on.

Data: JSON lines (or a JSON list). Sequence classification: ``{"text": ..., "text_pair": ... (optional),
"label": int or label name}``. Question answering (SQuAD format): ``{"question": ..., "context": ...,
"answers": {"text": [...], "answer_start": [...]}}``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError, UsageError

QA = "question-answering"
SEQ_CLS = "sequence-classification"
TASKS = (QA, SEQ_CLS)
_ALIASES = {"qa": QA, "question-answering": QA, "seq-cls": SEQ_CLS, "sequence-classification": SEQ_CLS,
            "classification": SEQ_CLS}


@dataclass
class TaskConfig:
    task: str
    teacher: str
    student: str
    data: str
    out: str
    alpha_ce: float = 0.5
    alpha_task: float = 0.5
    temperature: float = 2.0
    max_len: int = 256
    doc_stride: int = 64
    batch_size: int = 16
    epochs: float = 1.0
    steps: int | None = None
    lr: float = 5e-5
    warmup: float = 0.1
    seed: int = 42
    max_examples: int | None = None
    progress: bool = True
    history: list = field(default_factory=list)

    def __post_init__(self) -> None:
        t = _ALIASES.get(self.task)
        if t is None:
            from ..errors import unknown_choice

            raise unknown_choice("task", self.task, list(_ALIASES))
        self.task = t
        if self.temperature <= 0 or self.alpha_ce < 0 or self.alpha_task < 0:
            raise UsageError("temperature must be positive and loss weights non-negative")
        if not 0 <= self.doc_stride < self.max_len // 2:
            raise UsageError(f"--doc-stride ({self.doc_stride}) must be below half of --max-len ({self.max_len})")


def read_records(path: str | os.PathLike, limit: int | None = None) -> list[dict]:
    """JSON lines or a JSON list of objects (``{"data": [...]}`` is accepted too)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"task data {p} does not exist")
    text = p.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        rows = json.loads(text)
    elif text.lstrip().startswith("{") and "\n{" not in text.strip():
        obj = json.loads(text)
        rows = obj.get("data", [obj]) if isinstance(obj, dict) else obj
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not rows or not all(isinstance(r, dict) for r in rows):
        raise UsageError(f"{p} holds no JSON objects; see `edgekit distill task --help` for the format")
    return rows[:limit] if limit else rows


def load_task_teacher(path: str, task: str) -> Any:
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    cls = AutoModelForQuestionAnswering if task == QA else AutoModelForSequenceClassification
    try:
        m = cls.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"could not load a fine-tuned {task} teacher from {path}: {e}") from e
    if m.config.model_type not in ("bert", "distilbert"):
        raise UsageError(f"teacher is a {m.config.model_type!r} model; BERT or DistilBERT teachers are supported")
    return m.eval()


def load_task_student(path: str, task: str, teacher: Any) -> Any:
    """The student with a task head; labels (names and count) come from the teacher."""
    from transformers import AutoConfig, DistilBertForQuestionAnswering, DistilBertForSequenceClassification

    cfg = AutoConfig.from_pretrained(path)
    if cfg.model_type != "distilbert":
        raise UsageError(f"student {path} is a {cfg.model_type!r} model; give a DistilBERT student "
                         "(from `edgekit distill` or `edgekit distill init`)")
    if task == QA:
        return DistilBertForQuestionAnswering.from_pretrained(path)
    tc = teacher.config
    return DistilBertForSequenceClassification.from_pretrained(
        path, num_labels=tc.num_labels, id2label=dict(tc.id2label), label2id=dict(tc.label2id))


def encode(task: str, rows: list[dict], tokenizer: Any, teacher_config: Any, max_len: int,
           doc_stride: int) -> dict[str, list]:
    """Tokenise with token types (for the teacher) and targets: labels, or start/end token positions."""
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
    try:
        enc = tokenizer([r["question"].lstrip() for r in rows], [r["context"] for r in rows],
                        truncation="only_second", max_length=max_len, stride=doc_stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True, return_token_type_ids=True)
    except ValueError as e:  # e.g. a question longer than max_len - stride leaves no room for context
        raise UsageError(f"cannot window the question-answering data: {e}; raise --max-len or lower "
                         "--doc-stride") from e
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
    return {"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"], "start_positions": starts,
            "end_positions": ends}


def collate(features: dict[str, list], idx: list[int], pad_id: int) -> dict[str, Any]:
    import torch

    L = max(len(features["input_ids"][i]) for i in idx)
    B = len(idx)
    ids = torch.full((B, L), pad_id, dtype=torch.long)
    tt = torch.zeros((B, L), dtype=torch.long)
    am = torch.zeros((B, L), dtype=torch.long)
    for b, i in enumerate(idx):
        n = len(features["input_ids"][i])
        ids[b, :n] = torch.tensor(features["input_ids"][i])
        tt[b, :n] = torch.tensor(features["token_type_ids"][i])
        am[b, :n] = 1
    out = {"input_ids": ids, "attention_mask": am, "token_type_ids": tt}
    for k in ("labels", "start_positions", "end_positions"):
        if k in features:
            out[k] = torch.tensor([features[k][i] for i in idx], dtype=torch.long)
    return out


def teacher_logits(teacher: Any, batch: dict, task: str) -> dict[str, Any]:
    """Teacher logits under inference mode; BERT teachers get their token types, DistilBERT ones cannot."""
    import torch

    kw = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if teacher.config.model_type == "bert":
        kw["token_type_ids"] = batch["token_type_ids"]
    with torch.inference_mode():
        out = teacher(**kw)
    if task == QA:
        return {"start": out.start_logits.clone(), "end": out.end_logits.clone()}
    return {"logits": out.logits.clone()}


def task_terms(student: Any, teacher: Any, batch: dict, cfg: TaskConfig) -> dict[str, Any]:
    """``{"ce": KL term, "task": task loss, "total": weighted sum}`` (means over the batch)."""
    import torch.nn.functional as F

    from .losses import task_kl_sum

    t = teacher_logits(teacher, batch, cfg.task)
    out = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    T = cfg.temperature
    B = batch["input_ids"].shape[0]
    if cfg.task == QA:
        mask = batch["attention_mask"].bool()
        ce = (task_kl_sum(out.start_logits, t["start"], T, mask) + task_kl_sum(out.end_logits, t["end"], T, mask)) / (
            2 * B)
        task_loss = (F.cross_entropy(out.start_logits, batch["start_positions"])
                     + F.cross_entropy(out.end_logits, batch["end_positions"])) / 2
    else:
        ce = task_kl_sum(out.logits, t["logits"], T) / B
        task_loss = F.cross_entropy(out.logits, batch["labels"])
    return {"ce": ce, "task": task_loss, "total": cfg.alpha_ce * ce + cfg.alpha_task * task_loss, "teacher": t}


def distill_task(cfg: TaskConfig) -> dict:
    """Run task-specific distillation and save the student (with tokenizer and a task card) to ``cfg.out``."""
    import torch
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    from .student import load_tokenizer, save_student

    acc = Accelerator(cpu=not torch.cuda.is_available())
    torch.manual_seed(cfg.seed)
    teacher = load_task_teacher(cfg.teacher, cfg.task).to(acc.device)
    student = load_task_student(cfg.student, cfg.task, teacher)
    tok = load_tokenizer(cfg.teacher)  # the teacher's tokenizer: it emits the token types the teacher needs
    rows = read_records(cfg.data, cfg.max_examples)
    feats = encode(cfg.task, rows, tok, teacher.config, cfg.max_len, cfg.doc_stride)
    n = len(feats["input_ids"])
    if n == 0:
        raise UsageError(f"{cfg.data} gave no training examples")
    bs = min(cfg.batch_size, n)
    per_epoch = max(1, n // bs)
    total = cfg.steps or max(1, math.ceil(cfg.epochs * per_epoch))
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr)
    warm = int(cfg.warmup * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(1, warm) if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    student, opt = acc.prepare(student, opt)
    student.train()
    g = torch.Generator().manual_seed(cfg.seed)
    history = []
    bar = tqdm(total=total, desc=f"distilling {cfg.task}", unit="step", disable=not (cfg.progress and
                                                                                      acc.is_main_process))
    t0 = time.perf_counter()
    step = 0
    order: list[int] = []
    while step < total:
        if len(order) < bs:
            order = torch.randperm(n, generator=g).tolist()
        idx, order = order[:bs], order[bs:]
        if acc.num_processes > 1:  # every process draws the same global batch and takes its share of it
            idx = idx[acc.process_index::acc.num_processes] or idx[:1]
        batch = {k: v.to(acc.device) for k, v in collate(feats, idx, tok.pad_token_id or 0).items()}
        terms = task_terms(student, teacher, batch, cfg)
        acc.backward(terms["total"])
        acc.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        rec = {"step": step, "loss": terms["total"].item(), "loss_ce": terms["ce"].item(),
               "loss_task": terms["task"].item()}
        history.append(rec)
        bar.set_postfix(loss=f"{rec['loss']:.4f}", refresh=False)
        bar.update(1)
    bar.close()
    elapsed = time.perf_counter() - t0
    agree = _agreement(acc.unwrap_model(student), teacher, feats, cfg, tok.pad_token_id or 0, acc.device)
    card = {"task": cfg.task, "teacher": cfg.teacher, "student_init": cfg.student, "steps": step,
            "examples": len(rows), "features": n, "loss_weights": {"ce": cfg.alpha_ce, "task": cfg.alpha_task},
            "temperature": cfg.temperature, "lr": cfg.lr, "elapsed_s": elapsed, "final": history[-1],
            "teacher_agreement": agree,
            "teacher_token_types": teacher.config.model_type == "bert"}
    if acc.is_main_process:
        save_student(acc.unwrap_model(student), cfg.out, tok, {"task_distillation": card})
        from ..record import atomic_write_text
        from .card import plot_losses

        plot_losses(history, Path(cfg.out) / "loss_curve.png")
        atomic_write_text(Path(cfg.out) / "task_distillation_card.json", json.dumps(
            {**card, "config": {k: v for k, v in asdict(cfg).items() if k != "history"}, "history": history},
            indent=2))
    return card


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
            o = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        if cfg.task == QA:
            same += int(((o.start_logits.argmax(-1) == t["start"].argmax(-1))
                         & (o.end_logits.argmax(-1) == t["end"].argmax(-1))).sum())
        else:
            same += int((o.logits.argmax(-1) == t["logits"].argmax(-1)).sum())
    return same / max(1, n)


def add_task_args(p: argparse.ArgumentParser) -> None:
    """Flags of ``edgekit distill task``."""
    p.add_argument("--task", required=True, choices=sorted(_ALIASES), help="qa or seq-cls")
    p.add_argument("--teacher", required=True, help="fine-tuned BERT/DistilBERT teacher folder")
    p.add_argument("--student", required=True, help="DistilBERT student folder (e.g. the output of edgekit distill)")
    p.add_argument("--data", required=True, help="JSON lines training data (see the module docs for the format)")
    p.add_argument("--out", required=True)
    p.add_argument("--alpha-ce", type=float, default=0.5)
    p.add_argument("--alpha-task", type=float, default=0.5)
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--max-len", type=int, default=256)
    p.add_argument("--doc-stride", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (overrides --epochs)")
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-examples", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")


def run_task_cli(ns: argparse.Namespace) -> int:
    cfg = TaskConfig(task=ns.task, teacher=ns.teacher, student=ns.student, data=ns.data, out=ns.out,
                     alpha_ce=ns.alpha_ce, alpha_task=ns.alpha_task, temperature=ns.temperature, max_len=ns.max_len,
                     doc_stride=ns.doc_stride, batch_size=ns.batch_size, epochs=ns.epochs, steps=ns.steps,
                     lr=ns.lr, seed=ns.seed, max_examples=ns.max_examples, progress=not ns.no_progress)
    card = distill_task(cfg)
    print(f"saved {cfg.out}: {card['steps']} steps, final loss {card['final']['loss']:.4f}, "
          f"student/teacher agreement {card['teacher_agreement']:.1%}")
    return 0
