"""ONNX target: ``torch.onnx`` export (opset 17), ONNX Runtime transformer fusion, fp16 and int8.

Pipeline, for every precision:

1. ``torch.onnx.export`` with the TorchScript-based exporter (``dynamo=False``): it needs no
   ``onnxscript`` and produces the graph shape ONNX Runtime's BERT fusion patterns are written for.
   ``fixed`` sequence lengths export static shapes; a ``range`` exports a dynamic ``seq`` axis.
2. Two small graph rewrites so the fusion recognises edgekit's attention (see ``prepare_for_fusion``).
3. ``onnxruntime.transformers.optimizer.optimize_model(model_type="bert")`` with Python fusions only
   (``opt_level=0``): Attention, SkipLayerNormalization, Gelu. Kernel-level rewrites are left to the
   session at load time, so the file stays portable across CPUs.
4. Precision:
   * ``fp32``: the fused graph;
   * ``fp16``: ``convert_float_to_float16(keep_io_types=True)`` (fp16 weights and compute, fp32 io);
   * ``int8-dynamic``: ``quantize_dynamic`` with per-channel signed int8 weights (MatMul, Attention,
     embedding Gather); activations are quantised on the fly by the kernels;
   * ``int8-static``: QDQ ``quantize_static`` of the MatMuls, activation ranges calibrated on
     representative text (``--calibration FILE`` or edgekit's built-in sentences).

The file carries edgekit metadata (task, precision, sequence lengths, output names) in
``metadata_props``. Validation and benchmarks run it in ``onnxruntime.InferenceSession``.
"""
from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.converter import ConvertResult, Converter, Tolerance
from edgekit.errors import ExportError, UnsupportedOpError, UsageError, ValidationError
from edgekit.precision import Precision

if TYPE_CHECKING:
    from edgekit.config import ExportOptions
    from edgekit.modeling import EdgeModel
    from edgekit.record import ArtifactRecord

log = logging.getLogger(__name__)

OPSET = 17
#: protobuf cannot serialise one message above 2 GiB; bigger models would need external data.
PROTOBUF_LIMIT = 2**31 - 1
#: Calibration samples used for int8-static when more are given (ranges settle well before this).
MAX_CALIBRATION_SAMPLES = 256

TOLERANCES = {
    Precision.FP32: Tolerance(max_abs=1e-4, min_cosine=0.99999, min_agreement=0.99),
    Precision.FP16: Tolerance(min_cosine=0.999, min_agreement=0.99),
    Precision.INT8_DYNAMIC: Tolerance(min_cosine=0.98, min_agreement=0.97),
    Precision.INT8_STATIC: Tolerance(min_cosine=0.95, min_agreement=0.95),
}


# ---- export ------------------------------------------------------------------------------------

def example_inputs(model: EdgeModel, seq: int) -> tuple[Any, ...]:
    """Trace inputs: int32 [1, seq]. Values do not matter; nothing in the graph depends on them."""
    import torch

    ids = torch.full((1, seq), 5, dtype=torch.int32)
    ones = torch.ones(1, seq, dtype=torch.int32)
    zeros = torch.zeros(1, seq, dtype=torch.int32)
    return (ids, ones) + ((zeros,) if "token_type_ids" in model.input_names else ())


def dynamic_axes(model: EdgeModel, options: ExportOptions) -> dict[str, dict[int, str]] | None:
    """A ``range`` sequence length makes axis 1 of every input and every per-token output dynamic."""
    if options.seq_len.kind != "range":
        return None
    from edgekit.tasks import is_per_token

    axes = {n: {1: "seq"} for n in model.input_names}
    for n in model.output_names:
        if is_per_token(model.task, n):
            axes[n] = {1: "seq"}
    return axes


def torch_export(model: EdgeModel, options: ExportOptions, path: Path) -> None:
    """``torch.onnx.export`` at opset 17 with the TorchScript exporter (no onnxscript needed)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter announces its deprecation on every call
        torch.onnx.export(
            model.eval(), example_inputs(model, options.seq_len.default), str(path),
            input_names=list(model.input_names), output_names=list(model.output_names),
            dynamic_axes=dynamic_axes(model, options), opset_version=OPSET, dynamo=False,
            do_constant_folding=True,
        )


def _constant_value(graph: Any, producers: dict[str, Any], name: str) -> np.ndarray | None:
    from onnx import numpy_helper

    node = producers.get(name)
    if node is not None and node.op_type == "Constant" and node.attribute:
        return numpy_helper.to_array(node.attribute[0].t)
    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    return None


def prepare_for_fusion(model_proto: Any) -> dict[str, int]:
    """Rewrite two spots (in place, numerically identical) so ORT's BERT attention fusion matches.

    ONNX Runtime's fusion recognises the Hugging Face graph: scores ``Div``-ided by sqrt(d) and a
    mask built as ``Unsqueeze -> Unsqueeze -> Cast -> Sub(1, .) -> Mul(-1e4)``. edgekit's model
    multiplies by 1/sqrt(d) and subtracts before unsqueezing, so without these rewrites nothing is
    fused and the file runs ~1.7x slower. Returns how many of each rewrite were made.
    """
    graph = model_proto.graph
    producers = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    graph_inputs = {i.name for i in graph.input}
    counts = {"scale_mul_to_div": 0, "mask_unsqueeze_first": 0}

    # 1. scores * c -> scores / (1/c), where the product feeds Add -> Softmax. The fusion matches
    #    the Add's parents in input order, and a Mul there collides with the mask's Mul.
    from onnx import numpy_helper

    for mul in graph.node:
        if mul.op_type != "Mul" or len(mul.input) != 2:
            continue
        src = producers.get(mul.input[0])
        const = _constant_value(graph, producers, mul.input[1])
        if src is None or src.op_type != "MatMul" or const is None or const.size != 1 or const.item() == 0:
            continue
        after = consumers.get(mul.output[0], [])
        if len(after) != 1 or after[0].op_type != "Add":
            continue
        if [n.op_type for n in consumers.get(after[0].output[0], [])] != ["Softmax"]:
            continue
        name = f"{mul.name or mul.output[0]}_inverse_scale"
        graph.initializer.append(numpy_helper.from_array(np.array(1.0 / const.item(), dtype=const.dtype), name))
        mul.op_type = "Div"
        mul.input[1] = name
        counts["scale_mul_to_div"] += 1

    # 2. Cast(mask) -> Sub(1, .) -> Unsqueeze -> Unsqueeze  becomes
    #    Unsqueeze(mask) -> Unsqueeze -> Cast -> Sub(1, .): same values, the order ORT looks for.
    #    The original Cast stays when something else (mean pooling) reads the float mask.
    from onnx import helper

    for sub in list(graph.node):
        if sub.op_type != "Sub" or len(sub.input) != 2:
            continue
        cast = producers.get(sub.input[1])
        if cast is None or cast.op_type != "Cast" or cast.input[0] not in graph_inputs:
            continue
        u1 = consumers.get(sub.output[0], [])
        if len(u1) != 1 or u1[0].op_type != "Unsqueeze":
            continue
        u2 = consumers.get(u1[0].output[0], [])
        if len(u2) != 1 or u2[0].op_type != "Unsqueeze":
            continue
        u1, u2 = u1[0], u2[0]
        bias_users = consumers.get(u2.output[0], [])
        new_cast = helper.make_node("Cast", [u2.output[0]], [f"{cast.output[0]}_unsqueezed"],
                                    name=f"{cast.name or 'Cast'}_unsqueezed", to=_attr(cast, "to"))
        graph.node.append(new_cast)
        u1.input[0] = cast.input[0]
        sub.input[1] = new_cast.output[0]
        for user in bias_users:
            for k, name in enumerate(user.input):
                if name == u2.output[0]:
                    user.input[k] = sub.output[0]
        if len(consumers.get(cast.output[0], [])) == 1:
            graph.node.remove(cast)
        counts["mask_unsqueeze_first"] += 1
    if counts["mask_unsqueeze_first"]:
        _topological_sort(graph)
    return counts


def _attr(node: Any, name: str) -> Any:
    from onnx import helper

    return next(helper.get_attribute_value(a) for a in node.attribute if a.name == name)


def _ensure_ms_opset(model_proto: Any) -> None:
    """Fused nodes live in the com.microsoft domain, which the file must import to be valid ONNX."""
    from onnx import helper

    uses_ms = any(n.domain == "com.microsoft" for n in model_proto.graph.node)
    if uses_ms and not any(o.domain == "com.microsoft" for o in model_proto.opset_import):
        model_proto.opset_import.append(helper.make_opsetid("com.microsoft", 1))


def _topological_sort(graph: Any) -> None:
    """Re-order nodes after a rewire (ONNX requires producers before consumers)."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        progressed, rest = False, []
        for node in pending:
            if all(i in available for i in node.input):
                ordered.append(node)
                available.update(node.output)
                progressed = True
            else:
                rest.append(node)
        if not progressed:
            raise ExportError("ONNX graph has a cycle after the attention rewrite; please report this model")
        pending = rest
    copied = [type(n)() for n in ordered]
    for dst, src in zip(copied, ordered):
        dst.CopyFrom(src)
    del graph.node[:]
    graph.node.extend(copied)


def fuse(model_proto: Any, model: EdgeModel) -> tuple[Any, dict[str, int]]:
    """ORT's Python BERT fusions; returns the optimizer's OnnxModel and the fused-op counts."""
    from onnxruntime.transformers import optimizer

    cfg = model.config
    opt = optimizer.optimize_model(
        model_proto, model_type="bert", num_heads=cfg.num_heads, hidden_size=cfg.hidden_size, opt_level=0,
    )
    stats = {k: int(v) for k, v in (opt.get_fused_operator_statistics() or {}).items() if v}
    return opt, stats


def _calibration_texts(options: ExportOptions) -> list[str] | None:
    if options.calibration is None:
        return None
    texts = [line.strip() for line in Path(options.calibration).read_text(encoding="utf-8").splitlines()]
    texts = [t for t in texts if t]
    if not texts:
        raise UsageError(f"calibration file {options.calibration} has no text: write one sample per line")
    return texts[:MAX_CALIBRATION_SAMPLES]


def calibration_feeds(model: EdgeModel, options: ExportOptions) -> tuple[list[dict[str, np.ndarray]], str]:
    """Representative int32 feeds for int8-static and a note saying where they came from."""
    from edgekit.inputs import calibration_feeds as tokenised, random_feeds
    from edgekit.modeling import load_tokenizer

    texts = _calibration_texts(options)
    seq = options.seq_len.default
    try:
        tok = load_tokenizer(model.info.source)
    except Exception as e:  # noqa: BLE001 - any tokenizer problem means: calibrate without text
        if texts:
            raise UsageError(f"--calibration needs the model's tokenizer, which did not load: {e}") from None
        feeds = random_feeds(model.config.vocab_size, seq, model.input_names, n=16)
        return feeds, "calibrated on 16 random-token sequences (no tokenizer found next to the model)"
    feeds = tokenised(tok, model.task, seq, model.input_names, texts)
    where = f"{len(texts)} lines of {options.calibration}" if texts else f"edgekit's {len(feeds)} built-in sentences"
    return feeds, f"activation ranges calibrated on {where}"


class _FeedReader:
    """onnxruntime's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def quantize(fp32_path: Path, dest: Path, model: EdgeModel, options: ExportOptions) -> list[str]:
    """Write the int8 model for ``options.precision``; returns notes for the record."""
    import onnx

    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}  # fused contrib ops have no inferred types
    with _quiet_root_logger():  # the quantiser logs "please run pre-processing" through the root logger
        return _quantize(fp32_path, dest, model, options, extra)


class _quiet_root_logger:
    def __enter__(self) -> None:
        self.level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().setLevel(self.level)


def _quantize(fp32_path: Path, dest: Path, model: EdgeModel, options: ExportOptions, extra: dict[str, Any]) -> list[str]:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if options.precision == Precision.INT8_DYNAMIC:
        # Signed int8 per-channel weights: ~2x faster than uint8 on VNNI/dot-product CPUs and the
        # most accurate choice for BERT's outlier channels (see DESIGN.md, ONNX int8 choices).
        quantize_dynamic(fp32_path, dest, per_channel=True, weight_type=QuantType.QInt8, extra_options=extra)
        return ["int8-dynamic: per-channel QInt8 weights (MatMul, Attention, embedding Gather)"]
    feeds, where = calibration_feeds(model, options)
    # QDQ on MatMul only: softmax, layer norm and GELU stay float (all-int8 BERT collapses).
    quantize_static(
        fp32_path, dest, _FeedReader(feeds), quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
        per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
        extra_options={**extra, "ActivationSymmetric": False, "WeightSymmetric": True},
    )
    return [f"int8-static: QDQ int8 MatMuls, per-channel weights; {where}"]


def add_metadata(model_proto: Any, model: EdgeModel, options: ExportOptions) -> None:
    import onnx

    meta = {
        "edgekit.task": model.task.value,
        "edgekit.precision": options.precision.value,
        "edgekit.seq_len": str(options.seq_len),
        "edgekit.inputs": ",".join(model.input_names),
        "edgekit.outputs": ",".join(model.output_names),
        "edgekit.labels": ",".join(model.config.labels),
        "edgekit.source": model.info.source,
    }
    del model_proto.metadata_props[:]
    onnx.helper.set_model_props(model_proto, meta)
    model_proto.producer_name = "edgekit"


# ---- runtime -----------------------------------------------------------------------------------

class OnnxRunner:
    """An ``onnxruntime.InferenceSession`` on the CPU provider with a pinned intra-op thread count."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads = 1
        if threads:
            so.intra_op_num_threads = threads
        so.log_severity_level = 3  # "removing unused initializer" warnings are not the user's problem
        try:
            self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - ORT raises its own Fail/NotImplemented classes
            text = str(e)
            if "NOT_IMPLEMENTED" in text or "Could not find an implementation" in text:
                raise UnsupportedOpError(f"onnxruntime {ort.__version__} CPU cannot run this file: {text}") from None
            raise
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        self.threads = threads

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise ValidationError(f"the ONNX model needs inputs {missing}; got {sorted(feeds)}")
        inputs = {n: np.ascontiguousarray(feeds[n], dtype=np.int32) for n in self.input_names}
        outs = self.session.run(None, inputs)
        return {n: np.asarray(o, dtype=np.float32) for n, o in zip(self.output_names, outs)}


# ---- the target --------------------------------------------------------------------------------

class OnnxConverter(Converter):
    name = "onnx"
    suffix = ".onnx"
    extra = "onnx"
    requires = ("onnx", "onnxruntime")
    precisions = (Precision.FP32, Precision.FP16, Precision.INT8_DYNAMIC, Precision.INT8_STATIC)
    tolerances = TOLERANCES
    seq_kinds = ("fixed", "range")
    flags = frozenset({"calibration"})
    description = "ONNX (opset 17) with ONNX Runtime transformer fusion, for onnxruntime / ORT Mobile"

    def convert(self, model: EdgeModel, options: ExportOptions, dest: Path) -> ConvertResult:
        self.require()
        import onnx
        import onnxruntime
        import torch

        if options.seq_len.kind not in self.seq_kinds:
            raise UsageError(f"onnx exports fixed or range sequence lengths (e.g. 128 or 16:512), not {options.seq_len}")
        notes: list[str] = []
        with tempfile.TemporaryDirectory(prefix="edgekit-onnx-") as tmp:
            raw = Path(tmp) / "raw.onnx"
            torch_export(model, options, raw)
            proto = onnx.load(str(raw))
            rewrites = prepare_for_fusion(proto)
            opt, fused = fuse(proto, model)
            attention = fused.get("Attention", 0) + fused.get("MultiHeadAttention", 0)
            if attention != model.config.num_layers:
                notes.append(f"attention fused in {attention} of {model.config.num_layers} layers: "
                             "the unfused layers run as separate MatMul/Softmax ops (slower)")
            if options.precision == Precision.FP16:
                # keep_io_types: callers keep feeding int32 and reading float32; fp16 lives inside.
                opt.convert_float_to_float16(keep_io_types=True)
                notes.append("fp16 weights and compute; float32 outputs")
            final = opt.model
            if options.precision in (Precision.INT8_DYNAMIC, Precision.INT8_STATIC):
                fused_path, q_path = Path(tmp) / "fused.onnx", Path(tmp) / "int8.onnx"
                _ensure_ms_opset(final)
                onnx.save(final, str(fused_path))
                notes += quantize(fused_path, q_path, model, options)
                final = onnx.load(str(q_path))
            add_metadata(final, model, options)
            _ensure_ms_opset(final)
            if final.ByteSize() > PROTOBUF_LIMIT:
                raise ExportError("the ONNX model is over 2 GiB, which one protobuf file cannot hold; "
                                  "export a smaller precision (int8-dynamic) or a smaller model")
            onnx.save(final, str(dest))
        return ConvertResult(
            versions={"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
            options={"opset": OPSET, "exporter": "torch.onnx (TorchScript)", "fused_ops": fused,
                     "graph_rewrites": rewrites},
            notes=notes,
        )

    def load(self, path: Path, record: ArtifactRecord, threads: int | None = None) -> OnnxRunner:
        self.require()
        return OnnxRunner(path, threads)


CONVERTER = OnnxConverter()
