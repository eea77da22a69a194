"""The distillation card: what was distilled from what, how, and how well (Markdown + JSON + loss curve)."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from edgekit.core.record import atomic_write_text

CARD_MD = "DISTILLATION.md"
CARD_JSON = "distillation_card.json"
CURVE_PNG = "loss_curve.png"


def plot_losses(history: list[dict], path: Path) -> bool:
    """Loss curves (total and each term) to a PNG; False if matplotlib is missing or there is no history."""
    if not history:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    steps = [h["step"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(steps, [h["loss"] for h in history], label="total", linewidth=2)
    for k in sorted(k for k in history[0] if k.startswith("loss_")):
        ax.plot(steps, [h.get(k, float("nan")) for h in history], label=k[5:], linewidth=1)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return True


def _encoder_objective(w: dict) -> str:
    parts = [f"{w.get(k)} x {label}" for k, label in (
        ("nmse", "MSE(L2-normalised mean-pooled embeddings)"), ("mse", "MSE(mean-pooled embeddings)"),
        ("cos", "hidden cosine"), ("hmse", "MSE(token hidden states)"),
        ("rel", "MSE(in-batch cosine-similarity matrix)"), ("rkl", "KL(in-batch similarity softmax, T=0.05)"),
        ("hid", "cosine(every student layer, its teacher layer)")) if w.get(k)]
    return " + ".join(parts) or "none"


def share_text(r: dict) -> str | None:
    """The student's MRR as a share of the teacher's, with its interval and the cut's share (console and card)."""
    t = r["teacher"].get("mrr") or 0
    if "student" not in r or t <= 0:
        return None
    iv = (r.get("student_mrr_share") or {}).get("interval")
    within = f", 95% interval {iv[0]:.1%}-{iv[1]:.1%} on these {r['questions']} questions" if iv else ""
    return f"{r['student']['mrr'] / t:.1%} of the teacher's{within} (untrained cut {r['initial']['mrr'] / t:.1%})"


def _retrieval_lines(r: dict | None) -> list[str]:
    """The card's labelled benchmark: SQuAD question -> paragraph retrieval of cut, student and teacher."""
    if not r or "teacher" not in r or "initial" not in r:
        return []
    labels = {"r_at_1": "R@1", "r_at_5": "R@5", "mrr": "MRR"}
    has_s = "student" in r
    lines = ["", "## Question -> paragraph retrieval (SQuAD v1.1 dev slice)", "",
             f"{r.get('questions')} questions, each ranked against {r.get('paragraphs')} candidate paragraphs"
             + (f" (`{r['set']}`)" if r.get("set") else "") + "; mean-pooled, normalised embeddings, cosine.", "",
             "| | untrained layer cut | " + ("student | " if has_s else "") + "teacher |",
             "|---|---|" + ("---|" if has_s else "") + "---|"]
    for k, label in labels.items():
        lines.append(f"| {label} | {r['initial'][k]:.4f} | " + (f"{r['student'][k]:.4f} | " if has_s else "")
                     + f"{r['teacher'][k]:.4f} |")
    share = share_text(r)
    if share:
        lines += ["", f"Student MRR: {share}."]
    worse = r.get("below_untrained_cut")
    if worse:
        lines += ["", f"**WARNING: the student does not beat the untrained layer cut on retrieval "
                      f"{', '.join(labels.get(m, m) for m in worse)}.** Training did not help the labelled task."]
    return lines


def write_card(out_dir: str | os.PathLike, info: dict[str, Any], history: list[dict],
               comparison: dict | None = None) -> Path:
    """Write ``DISTILLATION.md``, ``distillation_card.json`` and ``loss_curve.png`` into ``out_dir``.

    An existing card's comparison is kept when none is given (training writes the card, compare adds to it).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    old = out / CARD_JSON
    if comparison is None and old.is_file():
        comparison = json.loads(old.read_text()).get("comparison")
    has_curve = plot_losses(history, out / CURVE_PNG)
    card = {**info, "comparison": comparison, "loss_curve": CURVE_PNG if has_curve else None}
    atomic_write_text(out / CARD_JSON, json.dumps(card, indent=2, default=str))
    w = info.get("loss_weights") or {}
    fin = info.get("final") or {}
    lines = [
        "# Distillation card",
        "",
        f"- Teacher: `{info.get('teacher')}` ({info.get('teacher_type')}, {info.get('teacher_layers')} layers, "
        f"{'masked-LM head' if info.get('teacher_kind') == 'mlm' else 'encoder without MLM head'})",
        f"- Student: DistilBERT, {info.get('student_layers')} layers; teacher layers copied: "
        f"{info.get('layer_map')}",
        "- Objective: " + (
            f"{w.get('ce')} x KL(T={w.get('temperature')}){' on masked tokens' if w.get('restrict_ce_to_mask') else ''}"
            f" + {w.get('mlm')} x MLM + {w.get('cos')} x hidden cosine"
            if info.get("teacher_kind") == "mlm" else _encoder_objective(w)),
        f"- Steps: {info.get('steps')}, global batch {info.get('global_batch')} sequences of at most "
        f"{info.get('max_len')} tokens, lr {info.get('lr')}, {info.get('processes')} process(es), "
        f"mixed precision {info.get('mixed_precision')}",
        f"- Tokens seen: {info.get('tokens_seen'):,}; throughput {info.get('tokens_per_s', 0):,.0f} tokens/s; "
        f"wall time {info.get('elapsed_s', 0):.0f} s",
        "- Final losses: " + ", ".join(f"{k} {v:.4f}" for k, v in fin.items() if k.startswith("loss")),
    ]
    corpus = info.get("corpus") or {}
    if corpus:
        lines.append(f"- Corpus: {corpus.get('texts')} texts -> {corpus.get('sequences')} sequences, "
                     f"{corpus.get('tokens'):,} tokens ({corpus.get('dropped_short')} too short, dropped)")
    if comparison:
        ini = comparison.get("initial")
        lines += ["", "## Student vs teacher (held-out text)", "",
                  f"{comparison['sentences']} held-out sentences never trained on"
                  + (f" (`{comparison['held_out']}`)" if comparison.get("held_out") else "") + ".", "",
                  "| vs teacher | " + ("untrained layer cut | " if ini else "") + "student |",
                  "|---|" + ("---|" if ini else "") + "---|"]
        for label, k in (("Spearman of pairwise similarities", "spearman"),
                         ("recall@10 of nearest neighbours", "recall_at_10"),
                         ("mean embedding cosine", "mean_cosine")):
            if k not in comparison:
                continue
            cut = f"{ini[k]:.4f} | " if ini and k in ini else ("n/a | " if ini else "")
            lines.append(f"| {label} | {cut}{comparison[k]:.4f} |")
        worse = comparison.get("below_untrained_cut")
        if worse:
            lines += ["", f"**WARNING: the student is below the untrained layer cut on {', '.join(worse)}.** "
                          "Training made it worse than copying layers and doing nothing."]
    lines += _retrieval_lines(info.get("retrieval"))
    if has_curve:
        lines += ["", f"![loss curve]({CURVE_PNG})"]
    atomic_write_text(out / CARD_MD, "\n".join(lines) + "\n")
    return out / CARD_MD
