"""Task distillation in segments, each ending in a checkpoint scored on the held-out slice of TRAIN.

One ``distill.task.distill_task`` schedule (warm-up and decay over the whole budget) run as a few
sessions (``TaskConfig.stop_after``, ``resume="auto"``): after each, the student of its checkpoint
is scored on the held-out slice, and the best one is kept as ``OUT/student``. DEV is never read
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


def train_student(cfg: Any, out: Path, score: Callable[[Path], float], state: dict[str, Any],
                  save_state: Callable[[], None], say: Callable[[str], Any] = print) -> dict[str, Any]:
    """Run ``cfg`` (a ``TaskConfig`` whose ``out`` is the training folder, student = the initial copy)
    in segments; score each checkpoint with ``score(folder)``; return the training summary with the
    chosen checkpoint, whose student is ``out/student``. ``state["training"]`` keeps the scores across
    interruptions."""
    from edgekit.distill.task import distill_task
    from edgekit.model.checkpoint import checkpoint_model

    train_dir = Path(cfg.out)
    ckdir = train_dir / "checkpoints"
    init = Path(cfg.student)
    tr = state.setdefault("training", {"scores": [], "done": False})
    save_state()
    out.mkdir(parents=True, exist_ok=True)
    best_dir = out / "student"   # the best-scoring student so far
    tmp_dir = out / "scored"     # the checkpoint being scored
    resuming = _newest(ckdir) is not None
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
                value = score(tmp_dir)
                tr["scores"].append({"step": step, "score": round(value, 3)})
                say(f"checkpoint step {step}: {value:.2f} on the held-out slice of TRAIN")
                if _best(tr) == step:
                    shutil.rmtree(best_dir, ignore_errors=True)
                    tmp_dir.rename(best_dir)
                else:
                    shutil.rmtree(tmp_dir, ignore_errors=True)
                save_state()
            continue
        break
    # The end of the schedule: distill_task saved the final student in the training folder.
    step = int(card["steps"])
    if step not in [s["step"] for s in tr["scores"]]:
        value = score(train_dir)
        tr["scores"].append({"step": step, "score": round(value, 3)})
        say(f"final step {step}: {value:.2f} on the held-out slice of TRAIN")
        if _best(tr) == step:
            shutil.rmtree(best_dir, ignore_errors=True)
            shutil.copytree(train_dir, best_dir, ignore=shutil.ignore_patterns("checkpoints"))
    tr["done"] = True
    tr["chosen_step"] = _best(tr)
    tr["card"] = {k: v for k, v in card.items() if k not in ("final",)}
    tr["card"]["final_loss"] = (card.get("final") or {}).get("loss")
    save_state()
    return tr


def _best(tr: dict[str, Any]) -> int:
    """The checkpoint with the best held-out score; a tie goes to the later one (more training)."""
    return max(tr["scores"], key=lambda s: (s["score"], s["step"]))["step"]
