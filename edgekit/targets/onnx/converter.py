"""ONNX target: ``torch.onnx`` export (opset 17), ONNX Runtime transformer fusion, fp16 and int8.

Pipeline, for every precision:

1. ``torch.onnx.export`` with the TorchScript-based exporter (``dynamo=False``): it needs no
   ``onnxscript`` and produces the graph shape ONNX Runtime's BERT fusion patterns are written for.
   ``fixed`` sequence lengths export static shapes; ``enumerated`` lengths (``128,256,384``) and a
   ``range`` export one graph with a dynamic ``seq`` axis, its upper bound declared in the
   metadata (``edgekit.max_seq_len``) and enforced by the runner; validation runs every listed
   length (a range: its bounds' default).
2. A graph rewrite so the fusion recognises edgekit's attention: scores divided by sqrt(d) and an
   additive mask built from ``attention_mask`` the way Hugging Face graphs build it (see
   ``prepare_for_fusion``); without it no attention is fused.
3. ``onnxruntime.transformers.optimizer.optimize_model(model_type="bert")`` with Python fusions only
   (``opt_level=0``): Attention, SkipLayerNormalization, Gelu. Kernel-level rewrites are left to the
   session at load time, so the file stays portable across CPUs.
4. Precision:
   * ``fp32``: the fused graph;
   * ``fp16``: ``convert_float_to_float16(keep_io_types=True)`` (fp16 weights and compute, fp32 io);
   * ``int8-dynamic``: ``quantize_dynamic`` with per-channel signed int8 weights (MatMul, Attention,
     embedding Gather); activations are quantised on the fly by the kernels, one scale per tensor,
     so the FFN down-projection (GELU outliers) stays float as in int8-static (``DYNAMIC_RECIPE``; the
     recipes that quantise it too, SmoothQuant outlier migration among them, are ``DYNAMIC_RECIPES``,
     measured by benchmarks/int8_recipes.py);
   * ``int8-dynamic-full``: the same with the FFN down-projection int8 too (``FULL_RECIPE``): about
     1.8x faster and a third smaller than ``int8-dynamic``, as fast as ORT's plain
     ``quantize_dynamic``, at a looser parity bound (its honest all-MiniLM-L6-v2 file sits at
     cosine 0.984, like int8-static's);
   * ``int8-static``: QDQ ``quantize_static`` (uint8 activations, per-channel int8 weights) of the
     attention-output and FFN-input MatMuls, activation ranges calibrated on representative text
     (``--calibration FILE`` or edgekit's built-in sentences); the fused Attention, the FFN
     down-projection (GELU outliers), layer norms and GELU stay float. Embedding tables are int8
     per row in both int8 precisions.

The file carries edgekit metadata (task, precision, sequence lengths, output names) in
``metadata_props``. Validation and benchmarks run it in ``onnxruntime.InferenceSession``.
"""
from __future__ import annotations

import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.core.target import ConvertContext, ConvertResult, Converter
from edgekit.core.tolerance import FP16_BOUND, FP32_BOUND, INT8_ACT_BOUND, INT8_BOUND
from edgekit.core.errors import ExportError, UnsupportedOpError, UsageError, ValidationError
from edgekit.core.precision import Precision

if TYPE_CHECKING:
    from edgekit.model.modeling import EdgeModel
    from edgekit.core.record import ArtifactRecord

OPSET = 17
#: protobuf cannot serialise one message above 2 GiB; bigger models would need external data.
PROTOBUF_LIMIT = 2**31 - 1
#: Activation type of int8-static (see _quantize for why uint8).
STATIC_ACTIVATIONS = "QUInt8"
#: MatMuls both int8 precisions leave in float, by name: the FFN down-projection reads GELU outputs
#: whose outliers (all-MiniLM-L6-v2: hundreds of times the median) one activation scale cannot cover.
#: ORT's dynamic quantisation also takes one scale per tensor: with ffn_out in int8 the shared SQuAD
#: model lost 3.56 F1 on the first 200 dev questions and changed 10.5% of its answers; kept float,
#: -0.17 F1 and 6.0% (DESIGN.md, "ONNX", with the other recipes measured).
FLOAT_MATMULS: tuple[str, ...] = ("ffn_out",)


@dataclass(frozen=True)
class DynamicRecipe:
    """How int8-dynamic treats the FFN down-projection (``FLOAT_MATMULS``) and the weights.

    ``ffn_out``: ``float`` (left as is), ``int8`` (quantised like every other MatMul) or ``smooth``
    (quantised after SmoothQuant's outlier migration, ``smooth_matmuls``, with ``alpha``);
    ``per_channel``: one weight scale per output column (else one per tensor); ``ort_defaults``:
    ORT's ``quantize_dynamic`` exactly as documented (every op it knows, per-tensor weights,
    embedding tables left to it), the peer recipe, for comparisons only.
    """

    name: str
    ffn_out: str = "smooth"
    alpha: float = 0.5
    per_channel: bool = True
    ort_defaults: bool = False

    def describe(self) -> str:
        if self.ort_defaults:
            return "ORT quantize_dynamic defaults (every MatMul, Attention and Gather; per-tensor QInt8 weights)"
        w = "per-channel" if self.per_channel else "per-tensor"
        ffn = {"float": "the FFN down-projection stays float",
               "int8": "the FFN down-projection int8 too",
               "smooth": f"the FFN down-projection int8 after SmoothQuant outlier migration (alpha {self.alpha:g}, "
                         "a Mul by 1/s before it, s folded into its weight rows)"}[self.ffn_out]
        return f"{w} QInt8 weights (MatMul, fused Attention); {ffn}"


#: The int8-dynamic recipes benchmarks/int8_recipes.py compares (benchmarks/results/int8_recipes.md).
DYNAMIC_RECIPES: dict[str, DynamicRecipe] = {r.name: r for r in (
    DynamicRecipe("ffn-float", ffn_out="float"),
    DynamicRecipe("ort-plain", ffn_out="int8", per_channel=False, ort_defaults=True),
    DynamicRecipe("all-int8", ffn_out="int8"),
    DynamicRecipe("all-int8-per-tensor", ffn_out="int8", per_channel=False),
    DynamicRecipe("smooth-0.5", alpha=0.5),
    DynamicRecipe("smooth-0.75", alpha=0.75),
    DynamicRecipe("smooth-0.5-per-tensor", alpha=0.5, per_channel=False),
    DynamicRecipe("smooth-0.75-per-tensor", alpha=0.75, per_channel=False),
)}
#: The recipe ``int8-dynamic`` files are made with (a benchmark may swap it for one of ``DYNAMIC_RECIPES``).
#: Still ffn-float (issue 27): smoothing quantises the down-projection within the F1 bound and is 1.6x faster,
#: but no faster than ORT's plain quantize_dynamic (the 1.2x target) and its honest parity cosine (0.984 at
#: seq 384) is below the 0.99 bound that catches one layer x1.10 (DESIGN.md, "ONNX").
DYNAMIC_RECIPE = DYNAMIC_RECIPES["ffn-float"]
#: The recipe of ``int8-dynamic-full``: the fastest recipe that keeps the shared SQuAD model's answers
#: (1,000 dev questions: -0.31 F1, 90.9% same answers; 1.07x ORT's plain quantize_dynamic at 2 threads),
#: shipped under its own name because it misses int8-dynamic's 0.99 cosine on all-MiniLM-L6-v2.
#: Per-channel all-int8 rather than smooth-0.5: the same F1 within the interval, a better parity
#: cosine (0.9952 vs 0.9878 on the QA model) and no extra Mul per layer.
FULL_RECIPE = DYNAMIC_RECIPES["all-int8"]

TOLERANCES = {
    Precision.FP32: FP32_BOUND,
    Precision.FP16: FP16_BOUND,
    # With the FFN down-projection in float the honest file sits at cosine 0.9931 on all-MiniLM-L6-v2
    # (seq 64) and one layer x1.10 at 0.9803: 0.975 let that damage pass, 0.99 does not (as TFLite's).
    Precision.INT8_DYNAMIC: INT8_BOUND,
    # Every MatMul int8 with one activation scale per tensor: honest files sit with int8-static's
    # (benchmarks/results/tolerances.md), so they share its bound.
    Precision.INT8_DYNAMIC_FULL: INT8_ACT_BOUND,
    Precision.INT8_STATIC: INT8_ACT_BOUND,
}


# ---- export ------------------------------------------------------------------------------------

def dynamic_axes(ctx: ConvertContext) -> dict[str, dict[int, str]] | None:
    """Several lengths (enumerated or a range) make axis 1 of every input and per-token output dynamic."""
    sig = ctx.signature
    if sig.seq_len.kind == "fixed":
        return None
    from edgekit.core.tasks import is_per_token

    names = sig.input_names + tuple(n for n in sig.output_names if is_per_token(sig.task, n))
    return {n: {1: "seq"} for n in names}


def torch_export(ctx: ConvertContext, path: Path) -> None:
    """``torch.onnx.export`` at opset 17 with the TorchScript exporter (no onnxscript needed).

    Several lengths (enumerated or a range) export a dynamic ``seq`` axis (``dynamic_axes``)."""
    import torch

    sig = ctx.signature
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter announces its deprecation on every call
        torch.onnx.export(
            ctx.model.eval(), sig.example_inputs(), str(path),
            input_names=list(sig.input_names), output_names=list(sig.output_names),
            dynamic_axes=dynamic_axes(ctx), opset_version=OPSET, dynamo=False,
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


MASK_INPUT = "attention_mask"
DEFAULT_MASK_VALUE = -1e4


def _initializers_and_users(graph: Any) -> tuple[dict[str, Any], dict[str, int]]:
    """The graph's initializers by name, and how many node inputs read each tensor name."""
    inits = {i.name: i for i in graph.initializer}
    users: dict[str, int] = {}
    for n in graph.node:
        for i in n.input:
            users[i] = users.get(i, 0) + 1
    return inits, users

def prepare_for_fusion(model_proto: Any) -> dict[str, int]:
    """Rewrite the attention scores (in place) into the form ORT's BERT attention fusion matches.

    ONNX Runtime's fusion recognises the Hugging Face graph: ``MatMul(q, k) / sqrt(d)`` plus an
    additive mask built as ``Unsqueeze -> Unsqueeze -> Cast -> Sub(1, .) -> Mul(-1e4)`` from the
    ``attention_mask`` input, then Softmax. edgekit's model multiplies by 1/sqrt(d) and masks with
    ``Where`` (or an additive bias built in another order), so without this nothing is fused and
    each layer runs attention as separate MatMul/Softmax ops. For every Softmax whose masking
    depends on ``attention_mask`` alone:

    * ``scores * c`` becomes ``scores / (1/c)`` (a Mul there collides with the mask's Mul);
    * ``Where(keep, scores, v)`` or ``scores + bias`` becomes ``scores + mask_bias`` with one shared
      ``mask_bias = (1 - float(mask[:, None, None, :])) * v``. On real tokens both give ``scores``
      exactly; masked ones get ``scores + v`` instead of ``v``, and either way their softmax weight
      is exp(-1e4) = 0. (ORT's fused Attention masks additively itself.)

    Returns how many of each rewrite were made; parity validation checks the result.
    """
    from onnx import numpy_helper

    graph = model_proto.graph
    producers = {o: n for n in graph.node for o in n.output}
    inputs = {i.name for i in graph.input}
    counts = {"scale_mul_to_div": 0, "mask_to_additive": 0}
    if MASK_INPUT not in inputs:
        return counts
    bias: str | None = None
    for softmax in [n for n in graph.node if n.op_type == "Softmax"]:
        pre = producers.get(softmax.input[0])
        if pre is None or pre.op_type not in ("Where", "Add"):
            continue
        if pre.op_type == "Where":
            cond, a, b = pre.input
            ca, cb = _constant_value(graph, producers, a), _constant_value(graph, producers, b)
            if cb is not None and ca is None:
                scores, fill, mask_src = a, cb, cond
            elif ca is not None and cb is None:
                scores, fill, mask_src = b, ca, cond
            else:
                continue
        else:
            scaled = [i for i in pre.input if _is_scaled_scores(producers, graph, i)]
            if len(scaled) != 1:
                continue
            scores, fill = scaled[0], None
            mask_src = next(i for i in pre.input if i != scores)
        if not _is_scaled_scores(producers, graph, scores):
            continue
        if _graph_inputs_above(mask_src, producers, inputs) != {MASK_INPUT}:  # e.g. a causal mask: leave it
            continue
        value = float(fill.item()) if fill is not None and fill.size == 1 else DEFAULT_MASK_VALUE
        if value >= 0:
            continue
        scale = producers[scores]
        if scale.op_type == "Mul":
            const = _constant_value(graph, producers, scale.input[1])
            name = f"{scale.name or scale.output[0]}_inverse_scale"
            graph.initializer.append(numpy_helper.from_array(np.array(1.0 / const.item(), dtype=const.dtype), name))
            scale.op_type, scale.input[1] = "Div", name
            counts["scale_mul_to_div"] += 1
        if bias is None:
            bias = _mask_bias(graph, value)
        pre.op_type = "Add"
        del pre.input[:]
        pre.input.extend([scores, bias])
        del pre.attribute[:]
        counts["mask_to_additive"] += 1
    if counts["mask_to_additive"]:
        _topological_sort(graph)  # the new mask nodes were appended after their consumers
        _remove_dead_nodes(graph)
    return counts


def _is_scaled_scores(producers: dict[str, Any], graph: Any, name: str) -> bool:
    """``MatMul(q, k) * c`` or ``MatMul(q, k) / c`` with a scalar constant c."""
    node = producers.get(name)
    if node is None or node.op_type not in ("Mul", "Div") or len(node.input) != 2:
        return False
    src = producers.get(node.input[0])
    const = _constant_value(graph, producers, node.input[1])
    return src is not None and src.op_type == "MatMul" and const is not None and const.size == 1 and const.item() != 0


def _graph_inputs_above(name: str, producers: dict[str, Any], inputs: set[str]) -> set[str]:
    """The graph inputs a tensor is computed from."""
    seen, stack, found = set(), [name], set()
    while stack:
        cur = stack.pop()
        if cur in seen:
            continue
        seen.add(cur)
        if cur in inputs:
            found.add(cur)
        node = producers.get(cur)
        if node is not None:
            stack.extend(i for i in node.input if i)
    return found


def _mask_bias(graph: Any, value: float) -> str:
    """Nodes computing ``(1 - float(mask[:, None, None, :])) * value``, in the order ORT matches."""
    from onnx import TensorProto, helper, numpy_helper

    p = "edgekit_mask"
    graph.initializer.extend([
        numpy_helper.from_array(np.array([1], dtype=np.int64), f"{p}_axis1"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), f"{p}_axis2"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), f"{p}_one"),
        numpy_helper.from_array(np.array(value, dtype=np.float32), f"{p}_value"),
    ])
    graph.node.extend([
        helper.make_node("Unsqueeze", [MASK_INPUT, f"{p}_axis1"], [f"{p}_u1"], name=f"{p}_Unsqueeze1"),
        helper.make_node("Unsqueeze", [f"{p}_u1", f"{p}_axis2"], [f"{p}_u2"], name=f"{p}_Unsqueeze2"),
        helper.make_node("Cast", [f"{p}_u2"], [f"{p}_float"], name=f"{p}_Cast", to=TensorProto.FLOAT),
        helper.make_node("Sub", [f"{p}_one", f"{p}_float"], [f"{p}_inverted"], name=f"{p}_Sub"),
        helper.make_node("Mul", [f"{p}_inverted", f"{p}_value"], [f"{p}_bias"], name=f"{p}_Mul"),
    ])
    return f"{p}_bias"


def _remove_dead_nodes(graph: Any) -> None:
    """Drop nodes whose outputs nothing reads (the model's own mask code, once replaced).

    ``graph.node`` must be topologically sorted: consumers are visited before their producers.
    """
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    alive = {id(n) for n in keep}
    for node in [n for n in graph.node if id(n) not in alive]:
        graph.node.remove(node)


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


class _FeedReader:
    """onnxruntime's CalibrationDataReader protocol over a list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def quantize(fp32_path: Path, dest: Path, ctx: ConvertContext) -> list[str]:
    """Write the int8 model for ``ctx.options.precision``; returns notes for the record."""
    import onnx

    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}  # fused contrib ops have no inferred types
    with _quiet_root_logger():  # the quantiser logs "please run pre-processing" through the root logger
        return _quantize(fp32_path, dest, ctx, extra)


class _quiet_root_logger:
    def __enter__(self) -> None:
        self.level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().setLevel(self.level)


def _quantize(fp32_path: Path, dest: Path, ctx: ConvertContext, extra: dict[str, Any]) -> list[str]:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    if ctx.options.precision == Precision.INT8_DYNAMIC:
        return _quantize_dynamic(fp32_path, dest, ctx, extra, DYNAMIC_RECIPE)
    if ctx.options.precision == Precision.INT8_DYNAMIC_FULL:
        return _quantize_dynamic(fp32_path, dest, ctx, extra, FULL_RECIPE)
    feeds = ctx.calibration()
    where = f"activation ranges calibrated on {ctx.calibration_info['samples']} samples of {ctx.calibration_info['source']}"
    # The quantiser only quantises activations whose type it knows; fused contrib-op outputs have
    # none until ORT's symbolic shape inference (which knows those ops) annotates them.
    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    typed = fp32_path.with_name("typed.onnx")
    onnx.save(SymbolicShapeInference.infer_shapes(onnx.load(str(fp32_path)), auto_merge=True), str(typed))
    fp32_path = typed
    # QDQ on MatMul only: softmax, layer norm and GELU stay float (all-int8 BERT collapses).
    # uint8 activations x int8 weights (U8S8): the layout x86 VNNI and ARM dot-product kernels run
    # fast; int8 activations took 47 ms instead of 22 ms on DistilBERT-base here.
    quantize_static(
        fp32_path, dest, _FeedReader(feeds), quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
        nodes_to_exclude=_float_matmuls(fp32_path),
        per_channel=True, activation_type=getattr(QuantType, STATIC_ACTIVATIONS), weight_type=QuantType.QInt8,
        extra_options={**extra, "ActivationSymmetric": False, "WeightSymmetric": True},
    )
    proto = onnx.load(str(dest))
    tables = quantize_embeddings(proto)
    onnx.save(proto, str(dest))
    return [f"int8-static: QDQ uint8 activations x per-channel int8 weights on the attention-output and FFN-input "
            f"MatMuls (fused Attention and FFN down-projection stay float); {tables} embedding table(s) int8 "
            f"per row; {where}"]


def _quantize_dynamic(fp32_path: Path, dest: Path, ctx: ConvertContext, extra: dict[str, Any],
                      recipe: DynamicRecipe) -> list[str]:
    """int8-dynamic by ``recipe``; returns the record's notes."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if recipe.ort_defaults:
        quantize_dynamic(fp32_path, dest, weight_type=QuantType.QInt8, extra_options=extra)
        return [f"{ctx.options.precision} ({recipe.name}): {recipe.describe()}"]
    notes = []
    exclude = _float_matmuls(fp32_path) if recipe.ffn_out == "float" else []
    if recipe.ffn_out == "smooth":
        proto = onnx.load(str(fp32_path))
        names = [n.name for n in proto.graph.node if n.op_type == "MatMul" and any(k in n.name for k in FLOAT_MATMULS)]
        absmax = activation_absmax(fp32_path, ctx.calibration(), names)
        done = smooth_matmuls(proto, absmax, recipe.alpha)
        fp32_path = fp32_path.with_name("smoothed.onnx")
        onnx.save(proto, str(fp32_path))
        info = ctx.calibration_info
        notes.append(f"SmoothQuant scales (alpha {recipe.alpha:g}) for {done} FFN down-projection(s) from "
                     f"{info.get('samples')} calibration samples of {info.get('source')}")
    # Signed int8 per-channel weights: ~2x faster than uint8 on VNNI/dot-product CPUs and the
    # most accurate choice for BERT's outlier channels. Embedding tables are left to
    # quantize_embeddings: ORT's Gather quantisation uses one scale per table, which costs
    # all-MiniLM-L6-v2 0.6 points of embedding cosine (0.978 vs 0.984).
    quantize_dynamic(fp32_path, dest, per_channel=recipe.per_channel, weight_type=QuantType.QInt8,
                     op_types_to_quantize=["MatMul", "Attention"], nodes_to_exclude=exclude, extra_options=extra)
    proto = onnx.load(str(dest))
    tables = quantize_embeddings(proto)
    onnx.save(proto, str(dest))
    return [f"{ctx.options.precision} ({recipe.name}): {recipe.describe()}; activations quantised at run time, one scale per "
            f"tensor; {tables} embedding table(s) int8 with one scale per row", *notes]


def activation_absmax(path: Path, feeds: list[dict[str, np.ndarray]], matmuls: list[str]) -> dict[str, np.ndarray]:
    """Per input channel, the largest ``|x|`` each named MatMul reads over ``feeds`` (every row,
    padding included: the run-time quantiser's one scale covers those too)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    proto = onnx.load(str(path))
    reads = {n.name: n.input[0] for n in proto.graph.node if n.name in matmuls}
    have = {o.name for o in proto.graph.output}
    proto.graph.output.extend(helper.make_tensor_value_info(t, TensorProto.FLOAT, None)
                              for t in dict.fromkeys(reads.values()) if t not in have)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    want = list(dict.fromkeys(reads.values()))
    inputs = {i.name for i in sess.get_inputs()}
    peak: dict[str, np.ndarray] = {}
    for feed in feeds:
        outs = sess.run(want, {k: v for k, v in feed.items() if k in inputs})
        for t, x in zip(want, outs):
            m = np.abs(x.reshape(-1, x.shape[-1])).max(axis=0)
            peak[t] = m if t not in peak else np.maximum(peak[t], m)
    return {name: peak[t] for name, t in reads.items()}


def smoothing_scales(x_absmax: np.ndarray, weight: np.ndarray, alpha: float) -> np.ndarray:
    """SmoothQuant's per-input-channel s = max|X_j|^alpha / max|W_j|^(1-alpha) (Xiao et al. 2023)
    for ``X @ W`` with ``W`` [in, out]; 1 where a channel is all zero on either side."""
    w = np.abs(weight).max(axis=1).astype(np.float64)
    x = np.asarray(x_absmax, dtype=np.float64)
    s = np.ones_like(x)
    ok = (x > 0) & (w > 0)
    s[ok] = x[ok] ** alpha / w[ok] ** (1 - alpha)
    return np.clip(s, 1e-5, 1e5).astype(np.float32)


def smooth_matmuls(model_proto: Any, absmax: dict[str, np.ndarray], alpha: float) -> int:
    """Migrate activation outliers into the weights of the named MatMuls (in place).

    ``X @ W = (X * (1/s)) @ (diag(s) W)``: a Mul by 1/s goes in front of the MatMul and each weight
    row j is multiplied by s_j. The Mul stays a node: the FFN down-projection reads GELU's output,
    and GELU is not linear, so 1/s cannot be folded into the up-projection exactly. Returns how
    many MatMuls were smoothed.
    """
    from onnx import helper, numpy_helper

    graph = model_proto.graph
    inits, users = _initializers_and_users(graph)
    done = 0
    for node in list(graph.node):
        if node.op_type != "MatMul" or node.name not in absmax or node.input[1] not in inits:
            continue
        init = inits[node.input[1]]
        weight = numpy_helper.to_array(init)
        if weight.ndim != 2 or weight.shape[0] != absmax[node.name].shape[0]:
            continue
        s = smoothing_scales(absmax[node.name], weight, alpha)
        base = f"{node.name.strip('/').replace('/', '_')}_smooth"
        scaled = numpy_helper.from_array((weight * s[:, None]).astype(weight.dtype), f"{base}_weight")
        graph.initializer.extend([scaled, numpy_helper.from_array((1.0 / s).astype(np.float32), f"{base}_inv_scale")])
        mul = helper.make_node("Mul", [node.input[0], f"{base}_inv_scale"], [f"{base}_input"], name=f"{base}_Mul")
        node.input[0], node.input[1] = f"{base}_input", f"{base}_weight"
        graph.node.insert(list(graph.node).index(node), mul)
        users[init.name] -= 1
        if users[init.name] == 0:
            graph.initializer.remove(init)
        done += 1
    return done


def _float_matmuls(path: Path) -> list[str]:
    """Names of the MatMuls both int8 precisions keep in float (``FLOAT_MATMULS``)."""
    import onnx

    return [n.name for n in onnx.load(str(path)).graph.node
            if n.op_type == "MatMul" and any(k in n.name for k in FLOAT_MATMULS)]


def quantize_embeddings(model_proto: Any, min_elements: int = 1024) -> int:
    """Store every float embedding table read by a Gather as int8 with one scale per row (in place).

    ``Gather(table, ids)`` becomes ``Gather(table_int8, ids) * Gather(row_scales, ids)``: three tiny
    ops per lookup, a quarter of the bytes, and an error of at most half a step of each row's own
    range. Returns how many tables were converted.
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model_proto.graph
    inits, users = _initializers_and_users(graph)
    done = 0
    for node in list(graph.node):
        if node.op_type != "Gather" or node.input[0] not in inits:
            continue
        init = inits[node.input[0]]
        if init.data_type != TensorProto.FLOAT or len(init.dims) != 2 or init.dims[0] * init.dims[1] < min_elements:
            continue
        if any(a.name == "axis" and a.i != 0 for a in node.attribute):
            continue
        table = numpy_helper.to_array(init).astype(np.float32)
        scale = np.abs(table).max(axis=1, keepdims=True) / 127.0
        scale[scale == 0] = 1.0
        q = np.clip(np.rint(table / scale), -127, 127).astype(np.int8)
        base = f"{init.name}_int8"
        graph.initializer.extend([numpy_helper.from_array(q, base),
                                  numpy_helper.from_array(scale.astype(np.float32), f"{base}_row_scale")])
        ids, out = node.input[1], node.output[0]
        pos = list(graph.node).index(node)
        new = [
            helper.make_node("Gather", [base, ids], [f"{out}_q"], name=f"{base}_Gather", axis=0),
            helper.make_node("Cast", [f"{out}_q"], [f"{out}_f"], name=f"{base}_Cast", to=TensorProto.FLOAT),
            helper.make_node("Gather", [f"{base}_row_scale", ids], [f"{out}_s"], name=f"{base}_GatherScale", axis=0),
            helper.make_node("Mul", [f"{out}_f", f"{out}_s"], [out], name=f"{base}_Mul"),
        ]
        graph.node.remove(node)
        for k, n in enumerate(new):
            graph.node.insert(pos + k, n)
        if users.get(init.name, 0) == 1:
            graph.initializer.remove(init)
        done += 1
    return done


def add_metadata(model_proto: Any, ctx: ConvertContext) -> None:
    import onnx

    model, options = ctx.model, ctx.options
    meta = {
        "edgekit.task": model.task.value,
        "edgekit.precision": options.precision.value,
        "edgekit.seq_len": str(options.seq_len),
        "edgekit.max_seq_len": str(options.seq_len.max),
        "edgekit.inputs": ",".join(ctx.signature.input_names),
        "edgekit.outputs": ",".join(ctx.signature.output_names),
        "edgekit.labels": ",".join(model.config.labels),
        "edgekit.source": model.info.source,
    }
    del model_proto.metadata_props[:]
    onnx.helper.set_model_props(model_proto, meta)
    model_proto.producer_name = "edgekit"


# ---- runtime -----------------------------------------------------------------------------------

class OnnxRunner:
    """An ``onnxruntime.InferenceSession`` on the CPU provider with a pinned intra-op thread count."""

    def __init__(self, path: Path, threads: int | None = None, ort_format: bool = False) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        if ort_format:
            so.add_session_config_entry("session.load_model_format", "ORT")
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
        meta = self.session.get_modelmeta().custom_metadata_map
        #: The longest input a dynamic-length file was exported (and validated) for.
        dynamic = any(isinstance(d, str) or d is None for i in self.session.get_inputs() for d in i.shape[1:])
        self.max_seq_len = (int(meta["edgekit.max_seq_len"]) if dynamic and meta.get("edgekit.max_seq_len", "").isdigit()
                            else None)  # a fixed-shape file: onnxruntime itself rejects other lengths
        text = meta.get("edgekit.seq_len", "")
        #: The lengths validated at export (enumerated buckets, or the one fixed length).
        self.seq_lens = tuple(int(v) for v in text.split(",")) if text and ":" not in text else ()

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise ValidationError(f"the ONNX model needs inputs {missing}; got {sorted(feeds)}")
        length = np.shape(feeds["input_ids"])[-1] if "input_ids" in feeds else None
        if self.max_seq_len is not None and length is not None and length > self.max_seq_len:
            raise UsageError(f"this file takes up to {self.max_seq_len} tokens, got {length}: use windows of at most "
                             f"{self.max_seq_len} (the QA pipeline's max_seq_len)")
        inputs = {n: np.ascontiguousarray(feeds[n], dtype=np.int32) for n in self.input_names}
        outs = self.session.run(None, inputs)
        return {n: np.asarray(o, dtype=np.float32) for n, o in zip(self.output_names, outs)}


# ---- the target --------------------------------------------------------------------------------

class OnnxConverter(Converter):
    name = "onnx"
    suffix = ".onnx"
    order = 60
    extra = "onnx"
    requires = ("onnx", "onnxruntime")
    precisions = (Precision.FP32, Precision.FP16, Precision.INT8_DYNAMIC, Precision.INT8_DYNAMIC_FULL,
                  Precision.INT8_STATIC)
    tolerances = TOLERANCES
    seq_kinds = ("fixed", "enumerated", "range")
    description = "ONNX (opset 17) with ONNX Runtime transformer fusion, for onnxruntime / ORT Mobile"

    def convert(self, ctx: ConvertContext, dest: Path) -> ConvertResult:
        self.require()
        import onnx
        import onnxruntime

        model, options = ctx.model, ctx.options
        if options.seq_len.kind not in self.seq_kinds:
            raise UsageError(f"onnx exports fixed, enumerated or range sequence lengths (128, 128,256,384 or 16:512), "
                             f"not {options.seq_len}")
        notes: list[str] = []
        with tempfile.TemporaryDirectory(prefix="edgekit-onnx-") as tmp:
            raw = Path(tmp) / "raw.onnx"
            torch_export(ctx, raw)
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
            if options.precision.is_int8:
                fused_path, q_path = Path(tmp) / "fused.onnx", Path(tmp) / "int8.onnx"
                _ensure_ms_opset(final)
                onnx.save(final, str(fused_path))
                notes += quantize(fused_path, q_path, ctx)
                final = onnx.load(str(q_path))
            add_metadata(final, ctx)
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
