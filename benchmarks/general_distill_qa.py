"""General distillation of a cut QA student on Wikipedia before its task distillation (issue 26 probe).

The record of the probe in ``results/squad_quality.md``, "General distillation before the task":
the DistilBERT recipe's first phase (distil on general text, then on the task), applied to the shallower copy
of a BERT QA teacher that ``edgekit.distill.task.init_task_student`` makes. The probe was a script; edgekit
now runs the same phase as ``edgekit distill general`` and ``edgekit shrink --general-data``
(``TaskConfig(phase="general")``, DESIGN.md "General distillation of the task student", which lists what the
port changed). This script stays the record of the measured runs.

What it does: the student's encoder learns the teacher's final hidden states (the squared error summed over
the hidden dimensions, averaged over the real tokens: the hidden size times ``edgekit.distill.losses``' ``hmse``
term, which averages over the dimensions; kept so because the probe ran so, with its clipping at norm 1) on
paragraph-length Wikipedia text laid out as a QA input is: a packed line's first sentence as segment A (the "question"), the rest as segment B (the "context"), up to
256 tokens. Lines pack consecutive sentences of ``../shared/data/enwiki-sentences`` to at least 170 words. No
SQuAD text is read: the sentences of the SQuAD dev articles and contexts were taken out of that corpus. AdamW
(lr 2e-4, weight decay 0.01), 5% warm-up then linear decay, bf16 autocast, gradient norm clipped at 1,
dropout 0, seed 0. The student's QA head is kept as it was (the teacher's) and saved with it.

    .venv/bin/python -c "from edgekit.distill.task import init_task_student as i; i('TEACHER', 'INIT', [0, 2, 4])"
    .venv/bin/python benchmarks/general_distill_qa.py --teacher TEACHER --student INIT --steps 1500 --out GD
    .venv/bin/edgekit distill task --task qa --teacher TEACHER --student GD --data TRAIN ... --out OUT
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from pathlib import Path

WIKI = "../shared/data/enwiki-sentences/enwiki-2015-sentences-1m.txt.xz"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--teacher", required=True, help="the BERT QA teacher folder")
    p.add_argument("--student", required=True, help="its cut (init_task_student)")
    p.add_argument("--text", default=WIKI, help=f"xz text, one sentence per line (default {WIKI})")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)

    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    random.seed(0)
    teacher = AutoModelForQuestionAnswering.from_pretrained(a.teacher).bert.eval()
    for q in teacher.parameters():
        q.requires_grad_(False)
    full = AutoModelForQuestionAnswering.from_pretrained(a.student, hidden_dropout_prob=0.0,
                                                         attention_probs_dropout_prob=0.0)
    student = full.bert.train()
    tok = AutoTokenizer.from_pretrained(a.student)
    # edgekit's packing and layout (distill.task.general_texts / as_pair) are the probe's own, moved there
    from edgekit.distill.task import as_pair, general_texts

    lines = general_texts(a.text)
    random.shuffle(lines)
    if a.steps * a.batch_size > len(lines):
        p.error(f"{a.steps} steps of {a.batch_size} need {a.steps * a.batch_size} lines; the text has {len(lines)}")
    opt = torch.optim.AdamW([q for q in student.parameters() if q.requires_grad], lr=a.lr, weight_decay=0.01)
    warm = max(1, int(0.05 * a.steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (a.steps - s) / max(1, a.steps - warm)))
    t0, losses = time.time(), []
    for step in range(a.steps):
        pairs = [as_pair(x) for x in lines[step * a.batch_size:(step + 1) * a.batch_size]]
        enc = tok([x for x, _ in pairs], [y for _, y in pairs], truncation="only_second", max_length=256,
                  padding=True, return_tensors="pt")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            with torch.no_grad():
                th = teacher(**enc).last_hidden_state.float()
            sh = student(**enc).last_hidden_state.float()
        loss = ((sh - th) ** 2).sum(-1)[enc["attention_mask"].bool()].mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 25 == 0 or step == a.steps - 1:
            el = time.time() - t0
            print(f"step {step + 1}/{a.steps} loss {losses[-1]:.4f} {el / (step + 1):.2f} s/step "
                  f"elapsed {el:.0f}s", file=sys.stderr, flush=True)
    full.save_pretrained(a.out, safe_serialization=True)
    tok.save_pretrained(a.out)
    if (Path(a.student) / "edgekit_student.json").is_file():
        shutil.copy(Path(a.student) / "edgekit_student.json", a.out)
    print(f"{a.out}: {a.steps} steps in {time.time() - t0:.0f} s, loss {losses[0]:.2f} -> "
          f"{sum(losses[-25:]) / len(losses[-25:]):.2f} (mean of the last 25)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
