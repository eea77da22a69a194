"""The plug-in shape every target package in ``edgekit/targets/`` has.

A target is one package in ``edgekit/targets/`` whose ``__init__`` defines ``CONVERTER``, an instance of a
``Converter`` subclass. Nothing else needs to change to add one: the registry finds it, the CLI
lists it, export/validate/bench/report use it through this interface. Heavy imports (coremltools,
litert, executorch, onnxruntime) happen inside ``convert``/``load`` only.
"""
from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol

import numpy as np

from edgekit.core.errors import MissingDependencyError
from edgekit.core.precision import Precision
from edgekit.core.tolerance import Tolerance

if TYPE_CHECKING:
    from edgekit.core.config import ExportOptions
    from edgekit.model.modeling import EdgeModel
    from edgekit.core.record import ArtifactRecord, TensorSpec
    from edgekit.core.signature import Signature


FLOAT = frozenset({"fp32"})
HALF = frozenset({"fp16"})


@dataclass(frozen=True)
class Contents:
    """What a file is, read from the file alone (a target's reader: ``Converter.inspect``)."""

    format: str                       # a target name (a family's reader may name either member)
    precisions: frozenset[str] | None  # the precisions its contents allow; None: the format cannot say
    evidence: str                     # what in the file says so, for messages

    def allows(self, precision: str) -> bool:
        return self.precisions is None or precision in self.precisions


@dataclass(frozen=True)
class Flag:
    """A command-line option one target declares (``edgekit export --help`` lists it under the target).

    ``switch``: ``--name`` turns it on (default False); ``no_switch``: ``--no-name`` turns it off
    (default True); otherwise it takes a value. The value reaches the converter as
    ``ctx.flag(name)`` and is written into the record's ``options``.
    """

    name: str                   # key in ExportOptions.flags / record.options, e.g. "deployment_target"
    help: str
    default: Any = None
    kind: str = "value"         # "value", "switch" or "no_switch"
    type: Callable[[str], Any] | None = None

    @property
    def cli(self) -> str:
        dashed = self.name.replace("_", "-")
        return f"--no-{dashed}" if self.kind == "no_switch" else f"--{dashed}"


@dataclass
class ConvertContext:
    """Everything a converter needs, handed to it instead of reached for.

    ``signature``: the file's inputs/outputs, shapes, dynamic axes and example inputs;
    ``tokenizer``: the model's tokenizer (None when the model folder has none);
    ``calibration()``: representative feeds for int8-static, from the one calibration reader
    (``edgekit.model.inputs.calibration``, handed in by the build stage as ``calibration_reader``),
    read once and described in ``calibration_info``.
    """

    model: EdgeModel
    options: ExportOptions
    signature: Signature
    converter: Converter
    tokenizer: Any = None
    notes: list[str] = field(default_factory=list)
    calibration_info: dict[str, Any] = field(default_factory=dict)
    calibration_reader: Callable[..., Any] | None = None
    _calibration: list[dict[str, np.ndarray]] | None = None

    def flag(self, name: str) -> Any:
        """The value of one of this target's flags (its declared default when the user left it)."""
        default = next(f.default for f in self.converter.flags if f.name == name)
        return self.options.flags.get(name, default)

    def calibration(self, input_names: tuple[str, ...] | None = None) -> list[dict[str, np.ndarray]]:
        """Tokenised calibration feeds at the default length (the user's file, or edgekit's sentences)."""
        if self._calibration is None:
            if self.calibration_reader is None:
                raise RuntimeError("this context was built without a calibration reader")
            self._calibration, self.calibration_info = self.calibration_reader(
                self.tokenizer, self.options.task, self.options.seq_len.default, self.signature.input_names,
                self.options.calibration, notes=self.notes, purpose=self.options.precision.value)
        if input_names is None:
            return self._calibration
        return [{n: f[n] for n in input_names} for f in self._calibration]


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

    name: ClassVar[str]                       # CLI name (the package's own)
    suffix: ClassVar[str]                     # e.g. ".pt"; a folder artifact ends with its suffix too
    extra: ClassVar[str]                      # pip extra that installs the backend
    requires: ClassVar[tuple[str, ...]] = ()  # modules that must import for this target
    precisions: ClassVar[tuple[Precision, ...]]
    tolerances: ClassVar[dict[Precision, Tolerance]]
    seq_kinds: ClassVar[tuple[str, ...]] = ("fixed",)  # which SeqLen kinds the target can export
    flags: ClassVar[tuple[Flag, ...]] = ()             # the target's own command-line options
    description: ClassVar[str] = ""
    order: ClassVar[int] = 1000                # place in tables and sweeps (lower first)
    #: Why files of this target are not checked on ARM64 here (when ``arm64()`` is None).
    arm64_missing: ClassVar[str] = "its runtime has no aarch64 build edgekit can run here"
    apps: ClassVar[tuple[str, ...]] = ()      # phone apps that ship this format (`edgekit bundle --app`)

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

    def default_seq_len(self, task: Any) -> str:
        """The sequence length(s) exported when the user names none: 384 for question answering
        (the Task Library's length), 128 otherwise. A target that serves several lengths from one
        file may default to enumerated lengths instead (Core ML QA)."""
        from edgekit.core.geometry import DEFAULT_QA_LENGTH

        return str(DEFAULT_QA_LENGTH) if str(getattr(task, "value", task)) == "question-answering" else "128"

    def validation_unavailable(self, record: ArtifactRecord) -> str | None:
        """A reason why this host cannot run the artifact (the record then says validation-skipped)."""
        return None

    def benchmark_unavailable(self) -> str | None:
        """Why timing this target's runner on this host means nothing (e.g. Core ML off Apple
        hardware, where the runner is a reference interpreter), or None."""
        return None

    def arm64(self) -> Any | None:
        """The target's runtime on the phone's CPU architecture (ARM64, under emulation): a module or
        object with ``RUNTIME`` (its distribution name in the emulated environment) and
        ``run_file(path, record, feeds, cpu=...)`` -> ``edgekit.emulation.WorkerRun``, fed exactly as
        the x86 runner is fed: the target package's ``arm64`` module. None: the runtime has no
        aarch64 build edgekit can run here."""
        return self._package_module("arm64")

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

    def variant(self, options: ExportOptions) -> str:
        """A file-name tag for flags that change what the file is (Core ML: ``-ane``); default none."""
        return ""

    @property
    def family(self) -> str:
        """Targets whose files the integrity reader cannot tell apart share a family name."""
        return self.name

    def _package_module(self, name: str) -> Any:
        """Module ``name`` of the target package this class, or the nearest class it derives from,
        lives in (a target's ``reader``, ``arm64``); None when there is none."""
        import importlib

        for cls in type(self).__mro__:
            package = cls.__module__.rpartition(".")[0]
            if not package.startswith("edgekit.targets."):
                continue
            try:
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as e:
                if e.name != f"{package}.{name}":
                    raise
        return None

    def _reader(self) -> Any:
        """The target package's ``reader`` module (``claims``/``inspect``), or None."""
        return self._package_module("reader")

    def claims(self, path: Path, head: bytes) -> bool:
        """Whether ``path`` (its first 64 bytes: ``head``; empty for a folder) is this target's format:
        the package's ``reader.claims``."""
        reader = self._reader()
        return reader is not None and bool(reader.claims(path, head))

    def inspect(self, path: Path) -> Contents:
        """Read what the file is from its bytes alone (format, the precisions its contents allow): the
        package's ``reader.inspect``."""
        reader = self._reader()
        if reader is None:
            raise NotImplementedError(f"{self.name} has no file reader")
        return reader.inspect(path)

    @property
    def flag_names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.flags)

    @abstractmethod
    def convert(self, ctx: ConvertContext, dest: Path) -> ConvertResult:
        """Write the artifact to ``dest`` (a temporary path edgekit renames on success)."""

    @abstractmethod
    def load(self, path: Path, record: ArtifactRecord, threads: int | None = None) -> Runner:
        """Load a saved artifact in its own runtime, ready to ``run``."""
