"""One description of an exported file's inputs and outputs: names, shapes, dtypes, dynamic axes, and
the example inputs every converter traces with."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.core.config import SeqLen
from edgekit.core.record import TensorSpec
from edgekit.core.tasks import Task, is_per_token

if TYPE_CHECKING:
    from edgekit.model.modeling import EdgeModel

SEQ = "seq"  # the name of the dynamic sequence axis


def output_shape(task: Task, name: str, seq: int | str, hidden: int, vocab: int, labels: int) -> list[int | str]:
    """Shape of one output for a [1, seq] input."""
    if name == "logits":
        per_class = {Task.MASKED_LM: vocab, Task.SEQUENCE_CLASSIFICATION: labels, Task.TOKEN_CLASSIFICATION: labels}
        return [1, seq, per_class[task]] if is_per_token(task, name) else [1, per_class[task]]
    return {"last_hidden_state": [1, seq, hidden], "embedding": [1, hidden],
            "start_logits": [1, seq], "end_logits": [1, seq]}[name]


@dataclass(frozen=True)
class Signature:
    """The io of one artifact. A ``range`` sequence length makes axis 1 dynamic (named ``seq``)."""

    task: Task
    seq_len: SeqLen
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    vocab_size: int

    @classmethod
    def of(cls, model: EdgeModel, seq_len: SeqLen) -> Signature:
        s: int | str = seq_len.values[0] if seq_len.kind == "fixed" else SEQ
        cfg = model.config
        inputs = tuple(TensorSpec(n, [1, s], "int32") for n in model.input_names)
        outputs = tuple(TensorSpec(n, output_shape(model.task, n, s, cfg.hidden_size, cfg.vocab_size, cfg.num_labels),
                                   "float32") for n in model.output_names)
        return cls(model.task, seq_len, inputs, outputs, cfg.vocab_size)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)

    def dynamic_axes(self) -> dict[str, dict[int, str]] | None:
        """Axis 1 of every input and every per-token output, for a ``range`` length; else None."""
        if self.seq_len.kind != "range":
            return None
        names = self.input_names + tuple(n for n in self.output_names if is_per_token(self.task, n))
        return {n: {1: SEQ} for n in names}

    def example_feeds(self, seq: int | None = None) -> dict[str, np.ndarray]:
        """Trace inputs, int32 [1, seq] by input name: seeded random ids, and a mask with padding at
        the end so that nothing specialises on an all-ones mask."""
        seq = seq or self.seq_len.default
        rng = np.random.default_rng(0)
        mask = np.ones((1, seq), dtype=np.int32)
        mask[0, seq - seq // 4:] = 0
        feeds = {"input_ids": rng.integers(0, self.vocab_size, (1, seq)).astype(np.int32), "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros((1, seq), dtype=np.int32)
        return {n: feeds[n] for n in self.input_names}

    def example_inputs(self, seq: int | None = None) -> tuple[Any, ...]:
        """``example_feeds`` as torch tensors in input order (positional arguments of the model)."""
        import torch

        return tuple(torch.from_numpy(v) for v in self.example_feeds(seq).values())
