"""A job: one file to export, its options checked once (by ``plan``) before any work starts."""
from __future__ import annotations

from dataclasses import dataclass

from edgekit.core import registry
from edgekit.core.config import ExportOptions, SeqLen
from edgekit.core.errors import UsageError
from edgekit.core.target import Converter


@dataclass(frozen=True)
class Job:
    """One file to export. ``skipped``: why it will not be exported (then ``options`` may be None)."""

    target: str
    precision: str
    seq_len: SeqLen
    options: ExportOptions | None = None
    skipped: str | None = None

    @property
    def label(self) -> str:
        return f"{self.target} {self.precision} s{self.seq_len}"



def check_options(conv: Converter, options: ExportOptions, n_inputs: int = 2) -> None:
    """Reject option combinations the target cannot honour, before any work starts."""
    if options.precision not in conv.precisions:
        raise UsageError(f"{conv.name} does not export {options.precision}; choose one of: "
                         + ", ".join(p.value for p in conv.precisions))
    if options.seq_len.kind not in conv.seq_kinds:
        raise UsageError(f"{conv.name} exports {'/'.join(conv.seq_kinds)} sequence lengths, not {options.seq_len.kind}")
    extra = set(options.flags) - conv.flag_names
    if extra:
        clis = {f.name: f.cli for c in registry.converters().values() for f in c.flags}
        raise UsageError(f"{conv.name} does not take {', '.join(clis.get(f, f) for f in sorted(extra))}")
    conv.check(options, n_inputs)
