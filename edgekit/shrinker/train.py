"""Task distillation in segments, each ending in a checkpoint scored on the held-out slice of TRAIN.

One ``distill.task.distill_task`` schedule (warm-up and decay over the whole budget) run as a few
sessions (``TaskConfig.stop_after``, ``resume="auto"``): after each, the student of its checkpoint
is scored on the held-out slice, question by question. The student kept is the end of the schedule
unless an earlier checkpoint beats it by more than the sampling error (``choose``). DEV is never read
here. An interrupted run (Ctrl-C, a killed process) continues from the newest checkpoint with
``--resume auto``; the scores already taken are in ``OUT/shrink_state.json``.
"""
from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

#: Checkpoints scored per run (the last one is the end of the schedule).
EVALUATIONS = 4
#: The rule ``choose`` applies (recorded in the state: a run chosen by an older rule is decided again).
RULE = "end of schedule unless an earlier checkpoint beats it by its paired 95% interval"


def _state_total(ckdir: Path) -> int | None:
    from edgekit.model.preflight import resume_checkpoint

    ck = resume_checkpoint(ckdir, "auto", say=lambda _: None)
    if ck is None:
        return None
    return json.loads((ck / "state.json").read_text()).get("total")


def _newest(ckdir: Path) -> tuple[Path, int] | None:
    from edgekit.model.preflight import resume_checkpoint

    ck = resume_checkpoint(ckdir, "auto", say=lambda _: None)
    if ck is None:
        return None
    return ck, int(json.loads((ck / "state.json").read_text())["step"])


def train_student(cfg: Any, out: Path, score: Callable[[Path], list[float]], state: dict[str, Any],
                  save_state: Callable[[], None], say: Callable[[str], Any] = print) -> dict[str, Any]:
    """Run ``cfg`` (a ``TaskConfig`` whose ``out`` is the training folder, student = the initial copy)
    in segments; score each checkpoint with ``score(folder)`` (each held-out question's score); return
    the training summary with the chosen checkpoint (``choose``), whose student is ``out/student``.
    ``state["training"]`` keeps the scores across interruptions."""
    from edgekit.distill.task import distill_task
    from edgekit.model.checkpoint import checkpoint_model

    train_dir = Path(cfg.out)
    ckdir = train_dir / "checkpoints"
    init = Path(cfg.student)
    tr = state.setdefault("training", {"scores": [], "done": False})
    save_state()
    out.mkdir(parents=True, exist_ok=True)
    best_dir = out / "student"   # the best-scoring earlier checkpoint so far, then the chosen student
    tmp_dir = out / "scored"     # the checkpoint being scored
    newest = _newest(ckdir)
    resuming = newest is not None
    if newest is not None:
        # The run's own options were checked on resume (shrinker.run); a recipe that differs from the
        # checkpoint's can only be this edgekit's (e.g. QA without dropout since 2026-12-06): the training
        # goes on as it began, and its card, which records the config, says so.
        from edgekit.distill.task import started_recipe

        cfg, changed = started_recipe(cfg, newest[0])
        if changed:
            say("the training continues with the recipe it started with ("
                + ", ".join(f"{k} {a!r}; this edgekit's recipe: {b!r}" for k, (a, b) in sorted(changed.items()))
                + ")")
    card = None
    total = cfg.steps or _state_total(ckdir)
    while True:
        # Without --steps the total is fixed inside distill_task (an epoch, or fitted to the budget after
        # its timing probe): a first short segment learns it from the checkpoint.
        seg = max(1, math.ceil(total / EVALUATIONS)) if total else 6
        run_cfg = replace(cfg, stop_after=seg, resume="auto" if resuming else None,
                          checkpoint_every=max(1, seg // 2), keep_checkpoints=3)
        card = distill_task(run_cfg)
        resuming = True
        newest = _newest(ckdir)
        if card.get("stopped"):
            assert newest is not None
            ck, step = newest
            total = total or _state_total(ckdir)
            if step not in [s["step"] for s in tr["scores"]]:
                checkpoint_model(ck, tmp_dir, init, cfg.task)
                tr["scores"].append(_scored(step, score(tmp_dir)))
                say(f"checkpoint step {step}: {tr['scores'][-1]['score']:.2f} on the held-out slice of TRAIN")
                if _best_earlier(tr["scores"]) == step:
                    shutil.rmtree(best_dir, ignore_errors=True)
                    tmp_dir.rename(best_dir)
                else:
                    shutil.rmtree(tmp_dir, ignore_errors=True)
                save_state()
            continue
        break
    # The end of the schedule: distill_task saved the final student in the training folder.
    step = int(card["steps"])
    tr["final_step"] = step
    if step not in [s["step"] for s in tr["scores"]]:
        tr["scores"].append(_scored(step, score(train_dir)))
        say(f"final step {step}: {tr['scores'][-1]['score']:.2f} on the held-out slice of TRAIN")
    tr["card"] = {k: v for k, v in card.items() if k not in ("final",)}
    tr["card"]["final_loss"] = (card.get("final") or {}).get("loss")
    _keep(tr, tr["scores"], best_dir, train_dir, say)
    tr["done"] = True
    save_state()
    return tr


def _scored(step: int, each: list[float]) -> dict[str, Any]:
    from edgekit.quality.gate import mean_score

    return {"step": step, "score": round(mean_score(each), 3), "each": [round(x, 2) for x in each]}


def _best_earlier(scores: list[dict[str, Any]], final: int | None = None) -> int | None:
    """The best-scoring checkpoint before the end of the schedule (a tie goes to the later one)."""
    earlier = [s for s in scores if s["step"] != final]
    return max(earlier, key=lambda s: (s["score"], s["step"]))["step"] if earlier else None


def choose(scores: list[dict[str, Any]], final: int) -> tuple[int, str]:
    """The checkpoint to keep and why: the end of the schedule (``final``), unless the best earlier
    checkpoint beats it on the held-out slice by a paired bootstrap 95% interval that lies wholly above
    zero. A point score on a few hundred questions is noise at the 1-2 point gaps between late
    checkpoints (the shared SQuAD model's third run kept step 2283 on 103 questions, 2.0 points ahead,
    and it was 0.84 F1 worse on all 5,397 DEV questions); the end of the schedule, where the learning
    rate has decayed, is the better default."""
    from edgekit.quality.gate import paired_interval

    by_step = {s["step"]: s for s in scores}
    end = by_step[final]
    other = _best_earlier(scores, final)
    if other is None:
        return final, "the end of the schedule (the only checkpoint scored)"
    best = by_step[other]
    lo, hi = paired_interval(best["each"], end["each"])
    gap = f"step {other} {best['score'] - end['score']:+.2f} [{lo:+.2f}, {hi:+.2f}] on {len(end['each'])} questions"
    if lo > 0:
        return other, f"it beats the end of the schedule beyond the sampling error ({gap})"
    return final, (f"the end of the schedule: no earlier checkpoint beats it beyond the sampling error "
                   f"(best earlier: {gap})")


def _keep(tr: dict[str, Any], scores: list[dict[str, Any]], best_dir: Path, train_dir: Path,
          say: Callable[[str], Any]) -> None:
    """Apply ``choose`` to ``scores`` and leave the chosen student in ``best_dir``, which holds the best
    earlier checkpoint; the end of the schedule is ``train_dir``."""
    final = tr["final_step"]
    step, why = choose(scores, final)
    if step == final:
        shutil.rmtree(best_dir, ignore_errors=True)
        shutil.copytree(train_dir, best_dir, ignore=shutil.ignore_patterns("checkpoints"))
    tr.update(chosen_step=step, chosen_because=why, rule=RULE)
    say(f"kept step {step}: {why}")


def decide_again(tr: dict[str, Any], out: Path, train_dir: Path, score: Callable[[Path], list[float]],
                 say: Callable[[str], Any] = print) -> bool:
    """A finished training chosen by an older rule (``tr`` has no ``rule``): score the student it kept
    (``out/student``) and the end of the schedule (``train_dir``) question by question, and apply
    ``choose``. Returns True when the kept student changed (its files are then out of date)."""
    if not tr.get("done") or tr.get("rule") == RULE:
        return False
    final = tr["final_step"] = tr.get("final_step") or max(s["step"] for s in tr["scores"])
    before = tr["chosen_step"]
    if before == final:  # the older rule kept the best point score: no earlier checkpoint scored higher
        tr.update(chosen_because="the end of the schedule: no earlier checkpoint scored higher", rule=RULE)
        return False
    say(f"the checkpoint was chosen by an older rule (step {before}); scoring the kept student and the end of "
        "the schedule question by question")
    by_step = {s["step"]: s for s in tr["scores"]}
    for step, folder in ((before, out / "student"), (final, train_dir)):
        if "each" not in by_step[step]:
            by_step[step].update(_scored(step, score(folder)))
    # Only the two students still on disk can be compared: the others' weights are gone.
    _keep(tr, [s for s in tr["scores"] if "each" in s], out / "student", train_dir, say)
    return tr["chosen_step"] != before
