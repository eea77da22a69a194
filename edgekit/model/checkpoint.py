"""A task-training checkpoint (``OUT/checkpoints/step-N`` of ``distill task`` / ``finetune`` / ``shrink``) as a model.

A checkpoint holds the student's weights (``student.safetensors``) and a JSON state whose ``config``
names the task and the folder training started from (``student``: the initial copy, with the config
and tokenizer the weights belong to). :func:`checkpoint_model` writes the ``save_pretrained`` folder
those two make, so a checkpoint can be scored (``edgekit eval OUT/checkpoints/step-N``) or picked
without waiting for the end of the schedule, and without a script of one's own.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from edgekit.core.errors import ModelLoadError, UsageError


@dataclass(frozen=True)
class TaskCheckpoint:
    """What a checkpoint's ``state.json`` says about the model in it."""

    path: Path
    step: int
    total: int | None
    task: str
    init: Path   # the folder training started from (config, tokenizer)


def is_task_checkpoint(path: str | Path) -> bool:
    """A folder with ``student.safetensors`` and a ``state.json`` (a task run's, or another training's)."""
    p = Path(path)
    return (p / "state.json").is_file() and (p / "student.safetensors").is_file()


def read_task_checkpoint(path: str | Path) -> TaskCheckpoint:
    """The checkpoint's step, task and initial folder; a UsageError says what is wrong with it."""
    from edgekit.core.tasks import Task

    p = Path(path)
    try:
        state = json.loads((p / "state.json").read_text())
        cfg = state.get("config") or {}
        step = int(state["step"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UsageError(f"{p} is not a readable training checkpoint (state.json: {e})") from None
    task, init = cfg.get("task"), cfg.get("student")
    if not task or not init:
        raise UsageError(f"{p} is a checkpoint of sentence-embedding distillation, not of a task model "
                         "(distill task / finetune / shrink): compare it with `edgekit distill compare`")
    task = Task.parse(task).value
    init_path = _as_training_saw_it(p, Path(init), cfg.get("out"))
    if not (init_path / "config.json").is_file():
        raise UsageError(f"checkpoint {p} was trained from {init}, which is not here: restore that folder "
                         "(a relative path is read from the folder training ran in)")
    total = state.get("total")
    return TaskCheckpoint(p, step, int(total) if total is not None else None, task, init_path)


def _as_training_saw_it(checkpoint: Path, path: Path, out: str | None) -> Path:
    """A path of the training's config, read from the folder training ran in when it is relative.

    Training saved ``student`` and ``out`` as given on its command line; the checkpoint sits in
    ``OUT/checkpoints/step-N``, so when ``out`` is relative the folder training ran in is OUT's folder
    minus ``out``'s parts — wherever ``eval`` runs from now."""
    if path.is_absolute() or (path / "config.json").is_file() or not out or Path(out).is_absolute():
        return path
    run_out = checkpoint.resolve().parent.parent
    parts = Path(out).parts
    if parts and run_out.parts[-len(parts):] == parts:
        ran_in = Path(*run_out.parts[:-len(parts)])
        if (ran_in / path / "config.json").is_file():
            return ran_in / path
    return path


def checkpoint_model(checkpoint: str | Path, dest: str | Path, init: str | Path | None = None,
                     task: str | None = None) -> Path:
    """Write ``dest``: the ``save_pretrained`` folder of the model in ``checkpoint`` (config and tokenizer
    from ``init``, by default the folder its training started from). Atomic: ``dest`` is whole or absent."""
    from safetensors.torch import load_model
    from transformers import AutoModelForQuestionAnswering, AutoModelForSequenceClassification

    from edgekit.model.modeling import load_tokenizer
    from edgekit.model.preflight import check_safetensors

    checkpoint, dest = Path(checkpoint), Path(dest)
    if init is None or task is None:
        ck = read_task_checkpoint(checkpoint)
        init, task = init or ck.init, task or ck.task
    init = Path(init)
    cls = AutoModelForQuestionAnswering if task == "question-answering" else AutoModelForSequenceClassification
    check_safetensors(checkpoint / "student.safetensors")  # a cut file: a message, not safetensors' traceback
    model = cls.from_pretrained(init)
    try:
        load_model(model, str(checkpoint / "student.safetensors"))
    except (RuntimeError, OSError) as e:  # shapes or names differ: not this init's checkpoint
        raise ModelLoadError(f"{checkpoint}/student.safetensors does not fit the model of {init}: "
                             f"{str(e).splitlines()[0][:200]}") from None
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    load_tokenizer(init).save_pretrained(tmp)
    if (init / "edgekit_student.json").is_file():
        shutil.copyfile(init / "edgekit_student.json", tmp / "edgekit_student.json")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest
