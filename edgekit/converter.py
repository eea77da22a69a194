"""The plug-in shape every target in ``converters/`` has.

A target is one module in ``converters/`` that defines ``CONVERTER``, an instance of a
``Converter`` subclass. Nothing else needs to change to add one: the registry finds it, the CLI
lists it, export/validate/bench/report use it through this interface. Heavy imports (coremltools,
litert, executorch, onnxruntime) happen inside ``convert``/``load`` only.
"""
from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from .errors import MissingDependencyError
from .precision import Precision

if TYPE_CHECKING:
    from .config import ExportOptions
    from .modeling import EdgeModel
    from .record import ArtifactRecord, TensorSpec


@dataclass(frozen=True)
class Tolerance:
    """Acceptance bounds for parity. A bound left at None is reported but not enforced."""

    max_abs: float | None = None
    min_cosine: float | None = None
    min_psnr: float | None = None       # dB, as apple/ml-ane-transformers computes it
    min_agreement: float | None = None  # task agreement in [0, 1]

    def to_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def merged(self, **overrides: float | None) -> Tolerance:
        """This tolerance with the given bounds replaced (None leaves a bound as it is)."""
        d = asdict(self)
        d.update({k: v for k, v in overrides.items() if v is not None})
        return Tolerance(**d)


class Runner(Protocol):
    """A loaded artifact that runs in its own runtime."""

    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch: int32 [1, S] arrays by input name -> float arrays by output name."""


@dataclass
class ConvertResult:
    """What ``convert`` tells the record beyond what edgekit can see from outside."""

    versions: dict[str, str]
    options: dict[str, Any] | None = None
    notes: list[str] | None = None
    # Override the io signature edgekit derives from the model (e.g. TFLite's extra segment_ids).
    inputs: list[TensorSpec] | None = None
    outputs: list[TensorSpec] | None = None


class Converter(ABC):
    """One export target. Subclasses set the class attributes and implement convert/load."""

    name: ClassVar[str]                       # CLI name, e.g. "torchscript"
    suffix: ClassVar[str]                     # e.g. ".pt"; a folder artifact ends with its suffix too
    extra: ClassVar[str]                      # pip extra that installs the backend
    requires: ClassVar[tuple[str, ...]] = ()  # modules that must import for this target
    precisions: ClassVar[tuple[Precision, ...]]
    tolerances: ClassVar[dict[Precision, Tolerance]]
    seq_kinds: ClassVar[tuple[str, ...]] = ("fixed",)  # which SeqLen kinds the target can export
    flags: ClassVar[frozenset[str]] = frozenset()      # target-specific ExportOptions fields it accepts
    description: ClassVar[str] = ""

    def missing_module(self) -> str | None:
        """The first required module that is not installed, or None."""
        for mod in self.requires:
            if importlib.util.find_spec(mod) is None:
                return mod
        return None

    def require(self) -> None:
        mod = self.missing_module()
        if mod is not None:
            raise MissingDependencyError(f"the {self.name} target", self.extra, mod)

    def tolerance(self, precision: Precision) -> Tolerance:
        return self.tolerances[precision]

    def validation_unavailable(self, record: ArtifactRecord) -> str | None:
        """A reason why this host cannot run the artifact (the record then says validation-skipped)."""
        return None

    def benchmark_unavailable(self) -> str | None:
        """Why timing this target's runner on this host means nothing (e.g. Core ML off Apple
        hardware, where the runner is a reference interpreter), or None."""
        return None

    def second_client_unavailable(self) -> str | None:
        """Why the target's second, independent client (TFLite: the Task Library) cannot run here, or None."""
        return None

    def check(self, options: ExportOptions, n_inputs: int = 2) -> None:
        """Reject, with a UsageError, option combinations this target cannot honour (e.g. Core ML
        int4 before iOS 18). Called before any work; ``--target/--precision all`` runs skip what
        it rejects. Default: everything the class attributes allow is fine."""

    def extra_validation(self, path: Path, record: ArtifactRecord, model: EdgeModel, tokenizer: Any = None,
                         verbose: bool = True) -> None:
        """A second, independent client that checks the same file after parity (TFLite: the Task
        Library). It records its verdict in ``record.options`` and may turn validated into
        parity-failed; it never turns a failure into a pass. Default: none."""

    @abstractmethod
    def convert(self, model: EdgeModel, options: ExportOptions, dest: Path) -> ConvertResult:
        """Write the artifact to ``dest`` (a temporary path edgekit renames on success)."""

    @abstractmethod
    def load(self, path: Path, record: ArtifactRecord, threads: int | None = None) -> Runner:
        """Load a saved artifact in its own runtime, ready to ``run``."""
