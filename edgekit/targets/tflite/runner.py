"""The TFLite target's runner: a .tflite file in the LiteRT interpreter (x86 here; the same feeding
is replayed on ARM64 by ``arm64.run_file``)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgekit.core.errors import UnsupportedOpError, UsageError

if TYPE_CHECKING:
    from edgekit.core.record import ArtifactRecord

#: The file's main signature, and the name its token-type input has (the Task Library's).
SIGNATURE = "serving_default"
SEGMENT = "segment_ids"
#: A multi-length file has one more signature per length: ``s128``, ``s256``, ...
BUCKET_PREFIX = "s"


class LiteRTRunner:
    """Runs a .tflite file in the LiteRT interpreter through its signature runners.

    A multi-length file has one signature per length (``s128``, ``s256``, ...); ``run`` picks the
    one whose length is the input's. ``seq_lens`` lists the lengths the file takes.
    """

    def __init__(self, path: Path, record: ArtifactRecord | None = None, threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.record = record
        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads or 1)
            self._runner = self.interpreter.get_signature_runner(SIGNATURE)
        except (RuntimeError, ValueError) as e:
            msg = str(e)
            if "Flex" in msg or "custom" in msg.lower() or "Didn't find op" in msg:
                raise UnsupportedOpError(f"LiteRT cannot run {path.name}: {msg}") from None
            raise
        sigs = self.interpreter.get_signature_list()
        sig = sigs[SIGNATURE]
        self.file_inputs = tuple(sig["inputs"])
        self.output_names = tuple(sig["outputs"])
        self.seq_len = int(self._runner.get_input_details()["input_ids"]["shape"][-1])
        self._by_length = {self.seq_len: self._runner}
        for name in sigs:
            if name.startswith(BUCKET_PREFIX) and name[len(BUCKET_PREFIX):].isdigit():
                runner = self.interpreter.get_signature_runner(name)
                self._by_length[int(runner.get_input_details()["input_ids"]["shape"][-1])] = runner
        self.seq_lens = tuple(sorted(self._by_length))
        # The file calls token types segment_ids (the Task Library's name); edgekit calls them token_type_ids.
        self.input_names = tuple("token_type_ids" if n == SEGMENT else n for n in self.file_inputs)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ids = np.asarray(feeds["input_ids"], dtype=np.int32)
        args = {"input_ids": ids, "attention_mask": np.asarray(feeds["attention_mask"], dtype=np.int32)}
        if SEGMENT in self.file_inputs:
            types = feeds.get("token_type_ids", feeds.get(SEGMENT))
            args[SEGMENT] = np.zeros_like(ids) if types is None else np.asarray(types, dtype=np.int32)
        runner = self._by_length.get(ids.shape[-1])
        if runner is None:
            lengths = " or ".join(f"[1, {n}]" for n in self.seq_lens)
            raise UsageError(f"this file takes {lengths} inputs, got {list(ids.shape)}; pad to "
                             f"{'the smallest length that fits' if len(self.seq_lens) > 1 else self.seq_len}")
        out = runner(**args)
        return {n: np.asarray(out[n]) for n in self.output_names}
