"""The tasks edgekit exports, with the output names each one produces (shapes: ``edgekit.core.signature``)."""
from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

from edgekit.core.errors import unknown_choice


class Task(str, Enum):
    MASKED_LM = "masked-lm"
    FEATURE_EXTRACTION = "feature-extraction"
    SEQUENCE_CLASSIFICATION = "sequence-classification"
    QUESTION_ANSWERING = "question-answering"
    TOKEN_CLASSIFICATION = "token-classification"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, name: str | Task) -> Task:
        """A task from its name or one of its short names (``ALIASES``: ``qa``, ``seq-cls``, …),
        the same everywhere a task is named (``export --task qa``, ``finetune --task qa``, the API)."""
        if isinstance(name, Task):
            return name
        key = str(name).strip().lower()
        try:
            return cls(ALIASES.get(key, key))
        except ValueError:
            raise unknown_choice("task", str(name), [t.value for t in cls] + list(ALIASES)) from None

    @property
    def aliases(self) -> tuple[str, ...]:
        """The short names of this task (``ALIASES``)."""
        return tuple(a for a, t in ALIASES.items() if t == self.value)

    @property
    def output_names(self) -> tuple[str, ...]:
        return _OUTPUTS[self]


#: Short names accepted wherever a task is named: the one table (the CLI's ``--task`` and ``Task.parse``).
ALIASES: dict[str, str] = {
    "qa": "question-answering",
    "seq-cls": "sequence-classification",
    "classification": "sequence-classification",
    "token-cls": "token-classification",
    "mlm": "masked-lm",
    "embedding": "feature-extraction",
}


def task_names(tasks: "tuple[Task, ...] | list[Task] | None" = None) -> list[str]:
    """Every name (full names and aliases) of ``tasks`` (default: all), for an argparse ``choices``."""
    chosen = list(tasks) if tasks is not None else list(Task)
    return sorted([t.value for t in chosen] + [a for t in chosen for a in t.aliases])


_OUTPUTS: dict[Task, tuple[str, ...]] = {
    Task.MASKED_LM: ("logits",),
    Task.FEATURE_EXTRACTION: ("last_hidden_state", "embedding"),
    Task.SEQUENCE_CLASSIFICATION: ("logits",),
    Task.QUESTION_ANSWERING: ("start_logits", "end_logits"),
    Task.TOKEN_CLASSIFICATION: ("logits",),
}

# Outputs that have one row per token: parity compares them on real (non-pad) tokens only.
PER_TOKEN_OUTPUTS = frozenset({"last_hidden_state", "start_logits", "end_logits"})


def is_per_token(task: Task, output: str) -> bool:
    return output in PER_TOKEN_OUTPUTS or (output == "logits" and task in (Task.MASKED_LM, Task.TOKEN_CLASSIFICATION))


def infer_task(model: str) -> str:
    """The task a checkpoint was trained for, from its config's architectures."""
    cfg = Path(model) / "config.json"
    try:
        archs = json.loads(cfg.read_text()).get("architectures") or []
    except (OSError, ValueError, AttributeError):
        archs = []
    for arch in archs:
        for suffix, task in (("ForQuestionAnswering", "question-answering"),
                             ("ForSequenceClassification", "sequence-classification"),
                             ("ForTokenClassification", "token-classification"), ("ForMaskedLM", "masked-lm"),
                             ("ForPreTraining", "masked-lm")):
            if arch.endswith(suffix):
                return task
    return "feature-extraction"
