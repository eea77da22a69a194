"""One distillation step, ours vs a straightforward full-logits implementation of the same losses.

Ours gathers the hidden states of the positions a loss reads before the vocabulary projection (hidden x 30522),
for teacher and student, and runs the teacher under inference mode. The reference projects every position of
both models and then selects rows. Both run forward + backward on the same batch from the same weights; the
losses must agree to 1e-5 and the speed ratio is written to ``benchmarks/results/distill_step.json``.

No download: teacher and student are random BERT-base-shaped models built from configs (a speed benchmark
needs the shapes, not trained weights).

    python benchmarks/distill_step.py                    # BERT-base shape, batch 8 x 128
    python benchmarks/distill_step.py --hidden 384 --layers 6 --heads 12 --intermediate 1536   # MiniLM shape
"""
from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402

from edgekit.distill.data import Batch, MaskingConfig, _example_generator, mask_example, token_probs  # noqa: E402
from edgekit.distill.losses import LossWeights  # noqa: E402
from edgekit.distill.objective import StudentStep, combine, full_logits_terms, step_terms  # noqa: E402
from edgekit.distill.student import build_student, load_teacher  # noqa: E402


def make_batch(batch: int, seq: int, vocab: int, seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(seq // 2, seq + 1, (batch,), generator=g).tolist()
    lengths[0] = seq
    probs = token_probs(np.ones(vocab), 0.7, [0, 100, 101, 102, 103])
    ids = torch.zeros(batch, seq, dtype=torch.long)
    mids = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    am = torch.zeros_like(ids)
    for b, n in enumerate(lengths):
        x = torch.randint(1000, vocab, (n,), generator=g)
        x[0], x[-1] = 101, 102
        m, y = mask_example(x.numpy(), probs, MaskingConfig(), 103, vocab, _example_generator(seed, 0, b))
        ids[b, :n], mids[b, :n], labels[b, :n], am[b, :n] = x, m, y, 1
    return Batch(mids, am, labels, ids)


def timed_pair(a, b, repeats: int) -> dict[str, dict[str, list[float]]]:
    """Wall and CPU seconds of ``a`` and ``b``, interleaved so that load from other processes hits both alike."""
    a(), b()  # warm-up (allocator, kernels)
    out: dict[str, dict[str, list[float]]] = {"a": {"wall": [], "cpu": []}, "b": {"wall": [], "cpu": []}}
    for _ in range(repeats):
        for name, fn in (("a", a), ("b", b)):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            out[name]["wall"].append(time.perf_counter() - w0)
            out[name]["cpu"].append(time.process_time() - c0)
    return out


def main(argv: list[str] | None = None) -> int:
    p = harness.parser(__doc__, out=harness.RESULTS / "distill_step.json",
                       out_help="the results json (its embedded_default entry, distill_speed.py's, is kept)")
    harness.ints(p, hidden=768, layers=12, heads=12, intermediate=3072, vocab=30522, batch=8, seq=128, repeats=3)
    a = p.parse_args(argv)

    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=a.vocab, hidden_size=a.hidden, num_hidden_layers=a.layers,
                     num_attention_heads=a.heads, intermediate_size=a.intermediate, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    teacher = load_teacher(BertForMaskedLM(cfg).eval())
    student, layer_map = build_student(teacher)
    with torch.no_grad():  # a student that is not a copy, so every loss term is non-trivial
        for prm in student.parameters():
            prm.add_(torch.randn_like(prm) * 0.01)
    student.eval()  # dropout off so both implementations compute the same function
    batch = make_batch(a.batch, a.seq, a.vocab, seed=1)
    step_model = StudentStep(student)
    results = []
    for restrict in (True, False):
        w = LossWeights(restrict_ce_to_mask=restrict)
        losses: dict[str, dict] = {}

        def ours() -> None:
            student.zero_grad(set_to_none=True)
            terms = step_terms(step_model, teacher, batch, w, "mlm")
            loss = combine(terms, w)
            loss.backward()
            losses["ours"] = {k: v[0].item() / max(v[1].item(), 1.0) for k, v in terms.items()} | {
                "total": loss.item()}

        def full() -> None:
            student.zero_grad(set_to_none=True)
            terms = full_logits_terms(student, teacher, batch, w)
            loss = combine(terms, w)
            loss.backward()
            losses["full"] = {k: v[0].item() / max(v[1].item(), 1.0) for k, v in terms.items()} | {
                "total": loss.item()}

        runs = timed_pair(ours, full, a.repeats)
        diff = max(abs(losses["ours"][k] - losses["full"][k]) for k in losses["ours"])
        # CPU seconds measure the work done and are robust to other jobs on a shared machine; wall time is
        # reported too. min over repeats = the least disturbed run.
        c_ours, c_full = min(runs["a"]["cpu"]), min(runs["b"]["cpu"])
        w_ours, w_full = min(runs["a"]["wall"]), min(runs["b"]["wall"])
        rec = {"kl_restricted_to_masked": restrict, "cpu_seconds_ours": c_ours, "cpu_seconds_full_logits": c_full,
               "speed_ratio": c_full / c_ours, "wall_seconds_ours": w_ours, "wall_seconds_full_logits": w_full,
               "wall_speed_ratio": w_full / w_ours, "runs": {"ours": runs["a"], "full_logits": runs["b"]},
               "losses_ours": losses["ours"], "losses_full_logits": losses["full"], "max_abs_loss_diff": diff,
               "losses_equal_1e-5": diff <= 1e-5}
        results.append(rec)
        print(f"KL on {'masked' if restrict else 'all real'} tokens: ours {c_ours:.2f} CPU-s, full logits "
              f"{c_full:.2f} CPU-s -> speed ratio {c_full / c_ours:.2f}x (wall {w_full / w_ours:.2f}x); "
              f"max |loss diff| {diff:.2e}")
    n_real = int(batch.attention_mask.sum())
    n_masked = int((batch.labels != -100).sum())
    out = {
        "benchmark": "one distillation step (teacher forward + student forward/backward + triple loss)",
        "shape": {"hidden": a.hidden, "teacher_layers": a.layers, "student_layers": len(layer_map),
                  "layer_map": layer_map, "vocab": a.vocab, "batch": a.batch, "seq": a.seq,
                  "real_tokens": n_real, "masked_tokens": n_masked, "padded_positions": a.batch * a.seq},
        "repeats": a.repeats,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpu_threads":
                    torch.get_num_threads(), "platform": platform.platform(), "processor": platform.processor(),
                    "note": "shared 2-core machine; absolute times are noisy, the ratio is the point"},
        "results": results, **harness.stamp(__file__, argv),
    }
    results_file = harness.Results(a.out)
    with results_file.update() as data:  # everything but benchmarks/distill_speed.py's entry is this run's
        kept = {k: data[k] for k in ("embedded_default",) if k in data}
        data.clear()
        data.update(out, **kept)
    print(f"wrote {results_file.json}")
    return 0 if all(r["losses_equal_1e-5"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
