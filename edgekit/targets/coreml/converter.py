"""Core ML: ``.mlpackage`` ML Programs, fp32/fp16 compute, compressed weights, an ANE layout.

Conversion path: ``torch.jit.trace`` of the EdgeModel (or of its ANE-layout twin, ``--ane``) ->
``coremltools.convert(convert_to="mlprogram")`` -> optional weight compression with
``coremltools.optimize.coreml`` -> metadata -> save.

Validation: Core ML only runs on Apple hardware, so ``load`` returns edgekit's reference
interpreter (``edgekit.targets.coreml.mil``), which reads the saved package back from disk and evaluates it op by
op in numpy with fp16 rounding. On macOS the real runtime is run as well (see ``MacRunner``).
"""
from __future__ import annotations

import atexit
import copy
import hashlib
import json
import os
import platform
import shutil
import tempfile
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.core.config import ExportOptions, SeqLen
from edgekit.core.target import ConvertContext, ConvertResult, Converter, Flag
from edgekit.core.tolerance import Tolerance
from edgekit.core.tolerance import FP16_BOUND, FP32_BOUND, INT8_BOUND
from edgekit.core.errors import ExportError, UsageError
from edgekit.core.precision import Precision

if TYPE_CHECKING:
    from edgekit.model.modeling import EdgeModel
    from edgekit.core.record import ArtifactRecord


DEFAULT_TARGET = "iOS16"
# ML Programs need iOS 15; int4 block-wise weights (constexpr_blockwise_shift_scale) need iOS 18.
MIN_TARGET, INT4_TARGET = 15, 18
# Before iOS 18 only one input of a model may have enumerated shapes; ours have two or three.
ENUMERATED_MULTI_INPUT_TARGET = 18
#: Enumerated lengths (length buckets: the app runs the smallest that fits; unlike a range they run
#: on the Neural Engine) need iOS 18 on multi-input models, which is then the default target.

TOLERANCES = {
    Precision.FP32: FP32_BOUND,
    # One fp16 rule for every target (edgekit.check.parity.FP16_BOUND). apple/ml-ane-transformers' 60 dB
    # bar failed honest files (59.7 dB) that ONNX passed at 59.1 dB: same numbers, opposite verdicts.
    Precision.FP16: FP16_BOUND,
    Precision.INT8_WEIGHT: INT8_BOUND,
    Precision.PALETTIZE8: INT8_BOUND,
    # Below 8 bits the bound is what an embedding app needs, not what the file happens to reach
    # (benchmarks/results/coreml_compression.md, all-MiniLM-L6-v2 at seq 128, worst sample of 68
    # feeds; recall@10 of 64 real queries among 1,024 sentences). A vector under cosine ~0.95, or a
    # file that changes more than one in ten of a query's ten nearest neighbours, is one no
    # retrieval app can use: that floor is the bound for 4 bits, whatever the recipe reaches.
    # palettize6 reaches 0.990 (recall@10 95.8% of all neighbours, per-tensor and grouped tables
    # alike; 0.9924 at seq 64); exported files with one layer's weights x1.10 reach 0.9851
    # (MiniLM) and 0.9807 (BERT-base-shaped), benchmarks/results/tolerances.md. 0.988 sits between,
    # with ~0.002 of room under the honest MiniLM file at 128.
    Precision.PALETTIZE6: Tolerance(min_cosine=0.988, min_agreement=0.95),
    # 4 bits: honest MiniLM files reach 0.855-0.860 (per-tensor or grouped palettes, recall@10
    # 82-85%) and int4 per block of 32 0.892 (83%): under the floor, so they are parity-failed, as
    # an app would find them. Damage on top of a 4-bit file lands lower still.
    Precision.PALETTIZE4: Tolerance(min_cosine=0.95, min_agreement=0.90),
    Precision.INT4_WEIGHT: Tolerance(min_cosine=0.95, min_agreement=0.90),
}


@dataclass(frozen=True)
class Recipe:
    """How a compressed precision stores the model's weights (``coremltools.optimize.coreml``).

    ``tables``: the recipe for tables (constants no matrix op reads: embedding tables, the folded
    position slice; the word table is over half of a MiniLM's weights), None = the same as the
    matrices. Measured alternatives and their numbers: ``benchmarks/coreml_compression.py`` ->
    ``benchmarks/results/coreml_compression.md``.
    """

    method: str                 # "linear": integers x scale; "palettize": k-means lookup table(s)
    nbits: int
    granularity: str            # per_channel | per_block | per_tensor | per_grouped_channel
    size: int | None = None     # block length (per_block) or output channels per table (per_grouped_channel)
    channel_scale: bool = False  # palettize: normalise each output channel by a scale first (iOS 18)
    tables: Recipe | None = None

    @property
    def min_target(self) -> int:
        """The iOS major the file needs: int4 data, block/grouped tables and per-channel scales are
        iOS 18 ops (constexpr_blockwise_shift_scale, the iOS 18 constexpr_lut_to_dense)."""
        own = INT4_TARGET if (self.method == "linear" and self.nbits < 8 or self.channel_scale
                              or self.granularity in ("per_block", "per_grouped_channel")) else MIN_TARGET
        return max(own, self.tables.min_target if self.tables else MIN_TARGET)

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"method": "linear_symmetric" if self.method == "linear" else "palettize_kmeans",
                             "nbits": self.nbits, "granularity": self.granularity}
        if self.size:
            d["block_size" if self.granularity == "per_block" else "group_size"] = self.size
        if self.channel_scale:
            d["per_channel_scale"] = True
        return d

    def op_config(self, shape: tuple[int, ...], table: bool) -> Any:
        """The coremltools config for one constant of ``shape``. A matrix (read by linear / matmul /
        conv) gets coremltools' own axes. A table (anything else: embedding tables, the folded
        position slice [1, S, hidden]) is rows of features: blocks and scales run along its last
        axis, one per row. coremltools' default axes for a rank-3 constant put int4 blocks along
        the sequence axis with one scale across the hidden axis: relative error 0.55 on MiniLM's
        position slice, embedding cosine 0.58 (benchmarks/results/coreml_compression.md)."""
        import coremltools.optimize.coreml as cto

        rows = [1] * (len(shape) - 1)
        if self.method == "linear":
            if table and self.granularity == "per_block":
                # (per_channel stays coremltools' own: per_block is an iOS 18 op, int8 runs on iOS 16.)
                return cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype=f"int{self.nbits}",
                                                   granularity="per_block", block_size=rows + [self.size],
                                                   weight_threshold=0)
            extra = {"block_size": self.size} if self.granularity == "per_block" else {}
            return cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype=f"int{self.nbits}",
                                               granularity=self.granularity, weight_threshold=0, **extra)
        extra: dict[str, Any] = {}
        if self.granularity == "per_grouped_channel":
            extra["group_size"] = self.size
            if table:
                extra["channel_axis"] = len(shape) - 2
        # k-means of our own (edgekit.targets.coreml.kmeans), handed over as a custom LUT:
        # coremltools' kmeans mode ran its exact kmeans1d over every distinct fp16 value, 37 s
        # of a palettize8 MiniLM export; ours is within 0.2% of that squared error in ~3 s.
        from edgekit.targets.coreml.kmeans import lut_function

        return cto.OpPalettizerConfig(mode="custom", lut_function=lut_function(self.nbits),
                                      granularity=self.granularity, enable_per_channel_scale=self.channel_scale,
                                      weight_threshold=0, **extra)


INT4_BLOCK = 32
#: Each compressed precision's recipe (``recipe_for``). Why these: DESIGN.md, "Compressed Core ML
#: recipes"; the alternatives measured are in benchmarks/coreml_compression.py.
RECIPES: dict[Precision, Recipe] = {
    Precision.INT8_WEIGHT: Recipe("linear", 8, "per_channel"),
    Precision.PALETTIZE8: Recipe("palettize", 8, "per_tensor"),
    Precision.PALETTIZE6: Recipe("palettize", 6, "per_tensor"),
    Precision.PALETTIZE4: Recipe("palettize", 4, "per_tensor"),
    Precision.INT4_WEIGHT: Recipe("linear", 4, "per_block", INT4_BLOCK),
}

# Compress every weight matrix (Linear / 1x1 conv / embedding table); leave 1-D biases and
# LayerNorm parameters in fp16: they are tiny and sensitive.
MIN_COMPRESSED_RANK = 2


def recipe_for(precision: Precision) -> Recipe | None:
    """The recipe a ``precision`` file gets (None: a float precision). Whether the deployment
    target can run it is ``check_options``' question, asked before converting."""
    if precision.is_float:
        return None
    if precision not in RECIPES:
        raise UsageError(f"coreml does not export {precision}")
    return RECIPES[precision]


def target_version(name: str | None) -> tuple[str, int]:
    """``"iOS16"`` -> (canonical name, major). Accepts iOS15 and later; rejects anything else."""
    name = name or DEFAULT_TARGET
    text = name.strip()
    digits = text[3:] if text.lower().startswith("ios") else text
    if not digits.isdigit():
        raise UsageError(f"--deployment-target must look like iOS16 (iOS{MIN_TARGET} or later), not {name!r}")
    major = int(digits)
    if major < MIN_TARGET:
        raise UsageError(f"ML Programs need iOS {MIN_TARGET} or later; --deployment-target {name} is too old")
    return f"iOS{major}", major


def _ct_target(ct: Any, name: str) -> Any:
    member = getattr(ct.target, name, None)
    if member is None:
        known = ", ".join(t.name for t in ct.target if t.name.startswith("iOS") and int(t.name[3:]) >= MIN_TARGET)
        raise UsageError(f"coremltools {ct.__version__} does not know deployment target {name}; choose one of: {known}")
    return member


def deployment_target(options: ExportOptions, n_inputs: int = 2) -> str:
    """The deployment target asked for; without one, iOS 16, or iOS 18 when enumerated lengths on a
    multi-input model need it."""
    if options.flags.get("deployment_target"):
        return options.flags["deployment_target"]
    if options.seq_len.kind == "enumerated" and n_inputs > 1:
        return f"iOS{ENUMERATED_MULTI_INPUT_TARGET}"
    return DEFAULT_TARGET


def check_options(options: ExportOptions, n_inputs: int = 2) -> None:
    """Reject combinations Core ML cannot honour on the chosen deployment target, before converting."""
    _, major = target_version(deployment_target(options, n_inputs))
    need = RECIPES[options.precision].min_target if options.precision in RECIPES else MIN_TARGET
    if major < need:
        raise UsageError(
            f"{options.precision} needs block-wise quantisation, which Core ML supports from iOS {need}: "
            f"add --deployment-target iOS{need}, or use palettize4 for 4-bit weights on older iOS")
    if options.seq_len.kind == "enumerated" and n_inputs > 1 and major < ENUMERATED_MULTI_INPUT_TARGET:
        raise UsageError(
            f"enumerated sequence lengths on a model with {n_inputs} inputs need iOS "
            f"{ENUMERATED_MULTI_INPUT_TARGET} (before that Core ML allows enumerated shapes on one input only): "
            f"add --deployment-target iOS{ENUMERATED_MULTI_INPUT_TARGET}, or export one fixed length per file, "
            "or a range LO:HI (ranges do not run on the Neural Engine)")


def _shape_for(ct: Any, seq: SeqLen) -> Any:
    if seq.kind == "fixed":
        return (1, seq.values[0])
    if seq.kind == "enumerated":
        return ct.EnumeratedShapes(shapes=[(1, s) for s in seq.values], default=(1, seq.default))
    lo, hi = seq.values
    return (1, ct.RangeDim(lower_bound=lo, upper_bound=hi, default=seq.default))


def vocab_sha256(source: str) -> str | None:
    """sha256 of the source checkpoint's vocabulary (vocab.txt, else tokenizer.json), if it is a folder."""
    folder = Path(source)
    for name in ("vocab.txt", "tokenizer.json"):
        f = folder / name
        if f.is_file():
            return hashlib.sha256(f.read_bytes()).hexdigest()
    return None


def _license_of(source: str) -> str:
    """The model card's ``license:`` front-matter entry, when the source folder has a README."""
    readme = Path(source) / "README.md"
    if readme.is_file():
        text = readme.read_text(errors="replace")
        if text.startswith("---"):
            for line in text.split("---", 2)[1].splitlines():
                if line.strip().startswith("license:"):
                    return line.split(":", 1)[1].strip()
    return "see the source model's license"


#: Ops whose weight operand is a matrix with input/output channel axes coremltools knows.
MATRIX_CONSUMERS = ("linear", "matmul", "conv", "conv_transpose", "einsum")


def weight_tensors(ml: Any) -> dict[str, tuple[tuple[int, ...], bool]]:
    """The constants to compress: name -> (shape, is it a table), a table being a constant no
    matrix op reads (embedding tables read by ``gather``, the folded position slice read by ``add``)."""
    found = {}
    for op in ml._mil_program.functions["main"].find_ops(op_type="const"):  # noqa: SLF001 - the public way to pick tensors
        val = op.outputs[0].val
        # Weight matrices only: skip 1-D vectors and broadcast fills (e.g. the -1e4 mask value).
        if (isinstance(val, np.ndarray) and val.ndim >= MIN_COMPRESSED_RANK and val.dtype.kind == "f"
                and val.size > 1 and np.ptp(val) > 0):
            table = not any(c.op_type in MATRIX_CONSUMERS for c in op.outputs[0].child_ops)
            found[op.name] = (tuple(val.shape), table)
    return found


def compress(ml: Any, recipe: Recipe | None) -> tuple[Any, dict[str, Any]]:
    """``ml`` with its weights compressed by ``recipe`` (and its tables by ``recipe.tables``), and
    the description the record keeps."""
    if recipe is None:
        return ml, {}
    import coremltools.optimize.coreml as cto

    tensors = weight_tensors(ml)
    desc = recipe.describe() | {"tensors": len(tensors)}
    if recipe.tables:
        desc["tables"] = recipe.tables.describe() | {"tensors": sum(t for _, t in tensors.values())}
    # One pass per method (palettize / linear): a pass takes per-name configs of its own kind.
    by_method: dict[str, dict[str, Any]] = {}
    for name, (shape, table) in tensors.items():
        r = recipe.tables if table and recipe.tables else recipe
        by_method.setdefault(r.method, {})[name] = r.op_config(shape, table)
    for method, names in by_method.items():
        fn = cto.linear_quantize_weights if method == "linear" else cto.palettize_weights
        ml = fn(ml, cto.OptimizationConfig(op_name_configs=names))
    return ml, desc


#: The last uncompressed ML Program converted, per model object, with its key (``_program_key``).
#: fp16, int8-weight and the palettes of one run start from the same fp16 program, and
#: coremltools' compression passes read the package spec into a new program and return a new
#: model (the cached one is not changed), so the demo traces and converts it once, not four times
#: (~4.5 s each on the quiet 2-core machine).
_PROGRAMS: weakref.WeakKeyDictionary[Any, tuple[Any, ...]] = weakref.WeakKeyDictionary()


def _program_key(ctx: ConvertContext, target_name: str) -> tuple[Any, ...] | None:
    """What the uncompressed program depends on: the weights' content (a hash: an edit through
    ``.data`` moves no version counter; ~0.1 s for MiniLM's 90 MB), the shapes, the ANE layout,
    the deployment target, fp32 or fp16, the signature and its example inputs. None: no reuse."""
    h = hashlib.blake2b(digest_size=16)
    try:
        for name, t in ctx.model.state_dict().items():
            h.update(name.encode())
            h.update(np.ascontiguousarray(t.detach().cpu().numpy()).view(np.uint8).reshape(-1).data)
        for t in ctx.signature.example_inputs():
            h.update(np.ascontiguousarray(t.numpy()).view(np.uint8).reshape(-1).data)
    except (AttributeError, RuntimeError, TypeError, ValueError):  # not a plain torch module
        return None
    sig = ctx.signature
    return (h.hexdigest(), str(ctx.options.seq_len), ctx.options.seq_len.kind, bool(ctx.flag("ane")), target_name,
            ctx.options.precision == Precision.FP32, tuple(sig.input_names), tuple(sig.output_names))


def mlprogram(ctx: ConvertContext) -> tuple[Any, str, list[str]]:
    """The uncompressed ML Program of ``ctx`` (fp32, or fp16 for every other precision), its
    deployment target name and notes: trace (of the ANE-layout twin with ``--ane``), convert; the
    previous call's program when nothing it depends on changed (``_PROGRAMS``)."""
    model, options = ctx.model, ctx.options
    target_name, _ = target_version(deployment_target(options, len(ctx.signature.input_names)))
    key = _program_key(ctx, target_name)
    try:
        cached = _PROGRAMS.get(model)
    except TypeError:  # not weak-referenceable
        cached, key = None, None
    if key is not None and cached is not None and cached[0] == key and os.path.isdir(cached[1].package_path):
        return cached[1], cached[2], list(cached[3])
    ml, target_name, notes = _convert_program(ctx, target_name)
    if key is not None and options.precision != Precision.FP32:  # fp32 programs have no second user
        keep = _keep(ml)
        if keep is not None:
            if cached is not None:
                shutil.rmtree(os.path.dirname(cached[1].package_path), ignore_errors=True)
            _PROGRAMS[model] = (key, keep, target_name, tuple(notes))
    return ml, target_name, notes


#: The system's temporary folder, read at import: during an export, tempfile points into the
#: file's staging folder, which is removed once the file is installed.
_SYSTEM_TMP = tempfile.gettempdir()


def _keep(ml: Any) -> Any:
    """A copy of ``ml`` whose package (and weights) live in a scratch folder of this process, not in
    the staging folder ct.convert wrote it to: the same program and spec, removed at exit."""
    import coremltools as ct

    folder = None
    try:
        folder = tempfile.mkdtemp(prefix="edgekit-coreml-program-", dir=_SYSTEM_TMP)
        atexit.register(shutil.rmtree, folder, True)
        pkg = os.path.join(folder, "program.mlpackage")
        ml.save(pkg)
        return ct.models.MLModel(pkg, mil_program=ml._mil_program, skip_model_load=True)  # noqa: SLF001
    except Exception:  # noqa: BLE001 - no reuse then, only a second conversion
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
        return None


def _convert_program(ctx: ConvertContext, target_name: str) -> tuple[Any, str, list[str]]:
    import coremltools as ct
    import torch

    model, options, ane = ctx.model, ctx.options, ctx.flag("ane")
    target = _ct_target(ct, target_name)
    src: torch.nn.Module = copy.deepcopy(model).eval()
    notes: list[str] = []
    if ane:
        from edgekit.targets.coreml.ane import ANEModel

        src = ANEModel.from_edge_model(model).eval()
        notes.append("ANE layout: (B, C, 1, S) tensors, 1x1 convolutions, per-head attention "
                     f"(apple/ml-ane-transformers), LayerNorm epsilon {src.eps:g}")
    seq = options.seq_len
    if ane and seq.kind == "range":
        notes.append("a sequence-length range cannot run on the Neural Engine; use fixed or enumerated lengths")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(src, ctx.signature.example_inputs(), strict=False, check_trace=False)
        inputs = [ct.TensorType(name=n, shape=_shape_for(ct, seq), dtype=np.int32) for n in ctx.signature.input_names]
        outputs = [ct.TensorType(name=n, dtype=np.float32) for n in ctx.signature.output_names]
        fp16 = options.precision != Precision.FP32
        ml = ct.convert(
            traced, convert_to="mlprogram", inputs=inputs, outputs=outputs,
            compute_precision=ct.precision.FLOAT16 if fp16 else ct.precision.FLOAT32,
            minimum_deployment_target=target, compute_units=ct.ComputeUnit.ALL,
        )
    return ml, target_name, notes


def _package_key(path: Path) -> tuple[Any, ...]:
    """Which file, in which state: the package's path and every file's size and mtime."""
    root = Path(path).resolve()
    files = sorted(root.rglob("*")) if root.is_dir() else [root]
    return (str(root),) + tuple((str(f), st.st_size, st.st_mtime_ns) for f in files if f.is_file()
                                for st in [f.stat()])


class CoreMLConverter(Converter):
    name = "coreml"
    suffix = ".mlpackage"
    order = 40
    arm64_missing = "Core ML runs only on Apple hardware (the MIL interpreter here is edgekit's own, not Apple's kernels)"
    apps = ("ios",)
    extra = "coreml"
    requires = ("coremltools",)
    # int8-weight first: the CLI alias ``int8`` resolves to the first int8 member.
    precisions = (Precision.FP32, Precision.FP16, Precision.INT8_WEIGHT, Precision.PALETTIZE8,
                  Precision.PALETTIZE6, Precision.PALETTIZE4, Precision.INT4_WEIGHT)
    tolerances = TOLERANCES
    seq_kinds = ("fixed", "enumerated", "range")
    flags = (
        Flag("ane", "coreml: Apple Neural Engine layout", default=False, kind="switch"),
        Flag("deployment_target", f"coreml: minimum deployment target, e.g. {DEFAULT_TARGET} (default), iOS18 "
                                  "(needed for int4-weight and for enumerated lengths on several inputs)"),
    )
    description = "Core ML ML Program (.mlpackage); validated on Linux by edgekit's MIL interpreter"

    def benchmark_unavailable(self) -> str | None:
        if platform.system() != "Darwin":
            return ("Core ML runs only on Apple hardware; here it is validated by edgekit's reference "
                    "interpreter, not timed")
        return None

    def variant(self, options: ExportOptions) -> str:
        return "-ane" if options.flags.get("ane") else ""

    def default_seq_len(self, task: Any) -> str:
        # Question answering: one package with enumerated lengths (iOS 18 is then the default
        # deployment target, see deployment_target), so the app runs each question at the
        # smallest length that holds it; fixed/enumerated shapes also stay ANE-compilable.
        if str(getattr(task, "value", task)) == "question-answering":
            from edgekit.core.geometry import DEFAULT_QA_BUCKETS

            return ",".join(str(v) for v in DEFAULT_QA_BUCKETS)
        return super().default_seq_len(task)

    def check(self, options: ExportOptions, n_inputs: int = 2) -> None:
        """Reject what Core ML cannot do on the chosen deployment target (UsageError), before any work."""
        check_options(options, n_inputs)

    def convert(self, ctx: ConvertContext, dest: Path) -> ConvertResult:
        import coremltools as ct

        options, ane = ctx.options, ctx.flag("ane")
        check_options(options, len(ctx.model.input_names))
        ml, target_name, notes = mlprogram(ctx)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ml, compression = compress(ml, recipe_for(options.precision))
        self._metadata(ml, ctx.model, options, target_name, ane)
        _save(ml, dest)
        opts: dict[str, Any] = {
            "deployment_target": target_name,
            "compute_precision": "fp32" if options.precision == Precision.FP32 else "fp16",
            "ane_layout": ane,
            "shapes": {"kind": options.seq_len.kind, "values": list(options.seq_len.values)},
        }
        if compression:
            opts["compression"] = compression
        return ConvertResult(versions={"coremltools": ct.__version__}, options=opts, notes=notes)

    @staticmethod
    def _metadata(ml: Any, model: EdgeModel, options: ExportOptions, target: str, ane: bool) -> None:
        from edgekit.core.version import __version__

        info = model.info
        ml.short_description = (f"{info.arch} {options.task} model ({info.num_layers} layers, hidden {info.hidden_size}), "
                                f"{options.precision}{' ANE layout' if ane else ''}, exported by edgekit")
        ml.author = f"edgekit {__version__} (source: {info.source})"
        ml.license = _license_of(info.source)
        ml.version = __version__
        meta = {
            "edgekit.version": __version__,
            "edgekit.source": info.source,
            "edgekit.task": str(options.task),
            "edgekit.precision": str(options.precision),
            "edgekit.seq_len": str(options.seq_len),
            "edgekit.seq_kind": options.seq_len.kind,
            "edgekit.deployment_target": target,
            "edgekit.ane": str(ane).lower(),
            "edgekit.inputs": ",".join(model.input_names),
            "edgekit.outputs": ",".join(model.output_names),
            "edgekit.vocab_sha256": vocab_sha256(info.source) or "unknown",
        }
        if model.config.labels:
            meta["edgekit.labels"] = json.dumps(list(model.config.labels))
        ml.user_defined_metadata.update(meta)
        for name in model.input_names:
            ml.input_description[name] = {
                "input_ids": "WordPiece token ids, int32 [1, seq]",
                "attention_mask": "1 for real tokens, 0 for padding, int32 [1, seq]",
                "token_type_ids": "segment ids (0 question, 1 context), int32 [1, seq]",
            }[name]
        labels = f" over labels {', '.join(model.config.labels)}" if model.config.labels else ""
        for name in model.output_names:
            ml.output_description[name] = {
                "logits": f"logits{labels}",
                "last_hidden_state": "token embeddings [1, seq, hidden]",
                "embedding": "mean-pooled sentence embedding [1, hidden]",
                "start_logits": "answer-start logits per token [1, seq]",
                "end_logits": "answer-end logits per token [1, seq]",
            }[name]

    def extra_validation(self, path: Path, record: ArtifactRecord, model: EdgeModel, tokenizer: Any = None,
                         verbose: bool = True) -> None:
        """ANE-like numbers beside the normal ones for fp16 and compressed files: the interpreter
        again with fp16 accumulation in matmul/linear/conv and fp16 LayerNorm statistics. Stored in
        ``record.parity.ane_like``; the bound applies to them when the file was exported with
        ``--ane`` (the Neural Engine is where it will run), else they are information."""
        from edgekit.core.console import console
        from edgekit.check.verdict import parity_feeds
        from edgekit.targets.coreml.mil import Interpreter
        from edgekit.check.parity import reference_outputs, value_failures, value_metrics
        from edgekit.core.measures import AneLikeParity
        from edgekit.core.record import Status

        loaded = self.__dict__.pop("_loaded", {}).get(_package_key(path))  # load()'s program, if this file
        if record.precision == Precision.FP32 or not record.parity or not record.parity.outputs:
            return
        task = record.task
        feeds, real = parity_feeds(model, tokenizer, task, record.seq_len)
        # The random inputs and the first 16 texts of each length: enough for a worst sample,
        # at a third of the cost of a second full pass through the interpreter.
        keep, seen = [], {}
        for f, r in zip(feeds, real):
            n = f["input_ids"].shape[1]
            seen[n] = seen.get(n, 0) + r
            if not r or seen[n] <= 16:
                keep.append(f)
        # The program parity just ran (its weights already decoded), with the other numerics.
        runner = InterpreterRunner((loaded or Interpreter(path)).with_numerics(ane_like=True), record)
        try:
            gots = [runner.run(f) for f in keep]
        except Exception as e:  # noqa: BLE001 - reported, and a failure only where the bound applies
            record.parity.ane_like = AneLikeParity(error=f"{type(e).__name__}: {e}")
            return
        metrics = value_metrics(task, reference_outputs(model, keep), gots, [f["attention_mask"] for f in keep])
        tol = Tolerance(**{k: v for k, v in record.tolerance.items() if k != "min_agreement"})
        fails = value_failures(metrics, tol)
        applies = bool(record.options.get("ane"))
        record.parity.ane_like = AneLikeParity(outputs=list(metrics), samples=len(keep), bound_applies=applies,
                                               failures=fails)
        if applies and fails and record.status == Status.VALIDATED:
            record.status = Status.PARITY_FAILED
            record.reason = "ANE-like numerics (fp16 accumulation, fp16 LayerNorm statistics): " + "; ".join(fails)
        if verbose:
            mark = "[red]✗[/]" if applies and fails else "[green]✓[/]" if not fails else "[yellow]i[/]"
            detail = "; ".join(f"{m.name} cos={m.cosine:.6f} psnr={m.psnr:.1f}dB" for m in metrics)
            console.print(f"    {mark} ANE-like numbers{'' if applies else ' (information)'}: {detail}")

    def load(self, path: Path, record: ArtifactRecord, threads: int | None = None) -> Any:
        from edgekit.targets.coreml.mil import Interpreter

        program = Interpreter(path)
        # Kept for extra_validation's second pass over the same, unchanged file (one file at a time).
        self._loaded = {_package_key(path): program}
        interp = InterpreterRunner(program, record, threads)
        if platform.system() == "Darwin":
            return MacRunner(path, interp, record)
        return interp


def _save(ml: Any, dest: Path) -> None:
    """coremltools insists on a ``.mlpackage`` name: save beside ``dest``, then rename into it."""
    dest = Path(dest)
    tmp = dest.with_name(dest.name + ".tmp.mlpackage")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        ml.save(str(tmp))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not (dest / "Manifest.json").is_file():
        raise ExportError(f"coremltools wrote no Manifest.json into {dest}")


class InterpreterRunner:
    """Runs a package with edgekit's numpy MIL interpreter (any OS)."""

    backend = "edgekit-mil-interpreter"

    def __init__(self, interp: Any, record: ArtifactRecord, threads: int | None = None) -> None:
        from edgekit.core.threads import choose

        self.interp = interp
        self.input_names = interp.input_names
        self.output_names = interp.output_names
        self.record = record
        # numpy's BLAS pool, like PyTorch's, sized to the free cores (edgekit.core.threads): on a
        # busy machine a starved 2-thread pool made the interpreter's matrix products 5-20x
        # slower. The thread count does not change the numbers (BLAS splits rows and columns,
        # never a sum).
        self.threads = choose(threads)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with _blas_threads(self.threads):
            out = self.interp.run({n: np.ascontiguousarray(feeds[n], dtype=np.int32) for n in self.input_names})
        return {n: np.asarray(v, dtype=np.float32) for n, v in out.items()}


_BLAS: list[Any] = []


def _blas_threads(n: int) -> Any:
    """A context limiting numpy's BLAS to ``n`` threads, via threadpoolctl when it is installed
    (it comes with scikit-learn; without it the BLAS keeps its own default)."""
    import contextlib

    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS.append(ThreadpoolController())
        except Exception:  # noqa: BLE001 - not installed, or no BLAS it knows: leave the pool alone
            _BLAS.append(None)
    return _BLAS[0].limit(limits=n, user_api="blas") if _BLAS[0] is not None else contextlib.nullcontext()


class MacRunner:
    """macOS only, UNTESTED in CI (no Apple hardware there): interpreter plus the real runtime.

    ``run`` returns the interpreter's outputs (so parity means the same on every OS) and also runs
    ``MLModel.predict`` with CPU_ONLY and ALL compute units, recording the worst absolute difference
    of each against the PyTorch-free interpreter in ``record.options["macos_runtime"]`` and a note.
    """

    def __init__(self, path: Path, interp: InterpreterRunner, record: ArtifactRecord) -> None:
        import coremltools as ct

        self.interp, self.record = interp, record
        self.input_names, self.output_names = interp.input_names, interp.output_names
        self.models = {
            unit: ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, unit))
            for unit in ("CPU_ONLY", "ALL")
        }
        self.worst: dict[str, float] = {u: 0.0 for u in self.models}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ref = self.interp.run(feeds)
        for unit, m in self.models.items():
            try:
                got = m.predict({n: np.ascontiguousarray(feeds[n], dtype=np.int32) for n in self.input_names})
                diff = max(float(np.abs(np.asarray(got[n], np.float32) - ref[n]).max()) for n in self.output_names)
                self.worst[unit] = max(self.worst[unit], diff)
            except Exception as e:  # record the runtime failure; the interpreter verdict still stands
                self.worst[unit] = float("nan")
                self.record.notes.append(f"Core ML runtime {unit} failed: {type(e).__name__}: {e}")
        self.record.options["macos_runtime"] = {u: {"max_abs_vs_interpreter": w} for u, w in self.worst.items()}
        return ref


CONVERTER = CoreMLConverter()
