"""TFLite (LiteRT) target: builtin-op ``.tflite`` files at fp32 / fp16 / int8, with Task Library metadata.

Conversion: litert-torch (PyTorch -> LiteRT, no TensorFlow) writes the float model; ai-edge-quantizer
rewrites it for the other precisions:

* ``fp16``: fp16 weights (FLOAT_CASTING on every supported op), fp32 compute where the runtime wants it;
* ``int8-dynamic``: int8 weights for fully-connected layers (per-channel; per-tensor in files with
  Task Library metadata, because its bundled runtime miscomputes per-channel hybrid kernels, except
  the FFN down-projection, which there keeps per-channel weights and float compute) and
  the embedding tables (per-tensor), activations quantised on the fly by the kernels;
* ``int8-weight``: int8 per-channel fully-connected weights dequantised to fp32 compute (accurate,
  and correct in every runtime), int8 embedding tables;
* ``int8-static``: the encoder's q/k/v/o and FFN-input projections run int8 x int8 with activation
  ranges calibrated on representative text; every weight is int8; the FFN output projection (its
  GELU inputs have outliers), the task head, softmax, layer norm, GELU and the attention matmuls
  compute in float. Quantising *every* op (the all-int8 recipe) collapses BERT
  (measured: start-logit error ~100 on logits of magnitude ~1 for a tiny DistilBERT), the failure
  tflite-android-transformers#10 reports as SST-2 at 50 %.

Every file is checked for Flex (SELECT_TF_OPS) and custom ops: a model that needs them does not
run on a stock Android interpreter, so the export fails instead of shipping it.

Signature: ``input_ids``, ``attention_mask`` and, for question answering and classification (the
Task Library feeds three tensors even for DistilBERT) or models that use token types,
``segment_ids``; int32 ``[1, S]``. Outputs are named per task. The Task Library's
``BertQuestionAnswerer`` always feeds 384 tokens: export QA with ``--seq-len 384`` for it.

Metadata (the BERT tokenizer process unit with ``vocab.txt`` packed in, tensor metadata, labels)
is written by tflite-support's metadata writers, which live in a separate environment
(``edgekit.targets.tflite.tasklib``); without it the file is written without metadata and the record says so.
"""
from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit.core.target import ConvertContext, ConvertResult, Converter, Flag
from edgekit.core.tolerance import FP16_BOUND, FP32_BOUND, INT8_ACT_BOUND, INT8_BOUND
from edgekit.core.errors import ExportError, UsageError
from edgekit.core.precision import Precision
from edgekit.core.record import TensorSpec
from edgekit.core.tasks import Task
from edgekit.targets.tflite.flatbuffer import op_report
from edgekit.targets.tflite.runner import BUCKET_PREFIX, SEGMENT, SIGNATURE, LiteRTRunner  # noqa: F401 - LiteRTRunner is the target's runner

if TYPE_CHECKING:
    from edgekit.core.config import SeqLen
    from edgekit.model.modeling import EdgeModel
    from edgekit.core.record import ArtifactRecord


#: The sequence length the Task Library's BertQuestionAnswerer feeds (kMaxSeqLen).
TASK_LIBRARY_QA_SEQ_LEN = 384
#: Tensor names of encoder-layer ops (litert-torch keeps the module path in them).
ENCODER_SCOPE = r"\.Layer_\d+/"
FFN_OUT_SCOPE = r"Linear_ffn_out"
HEAD_SCOPE = r"Head_head/|^serving_default_"
#: Tasks the Task Library has a BERT API for (and therefore metadata is written for).
METADATA_TASKS = {Task.QUESTION_ANSWERING: "qa", Task.SEQUENCE_CLASSIFICATION: "classifier"}


_FLOAT_CACHE: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()


def _model_key(model: EdgeModel, samples: dict[str, dict[str, Any]]) -> tuple[Any, ...]:
    """Identity of a conversion: architecture, signatures and their io, and a digest of every weight."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    shapes = tuple((sig, tuple((n, tuple(v.shape)) for n, v in sample.items())) for sig, sample in samples.items())
    return (repr(model.config), str(model.task), model.embeddings.position_rows, model.additive_mask, shapes,
            h.hexdigest())


def bucket_signature(seq: int) -> str:
    """The signature name of one length in a multi-length file (the apps look these names up)."""
    return f"{BUCKET_PREFIX}{seq}"


def signature_lengths(seq: SeqLen) -> list[tuple[str, int]]:
    """(signature name, length) in file order.

    One length: ``serving_default`` only. Several: ``serving_default`` at the longest length first
    (subgraph 0, which the Task Library and tflite-support's metadata writers read), then one
    ``s<len>`` per length; ``s<longest>`` names the same subgraph as ``serving_default``.
    """
    if seq.kind == "fixed":
        return [(SIGNATURE, seq.values[0])]
    return [(SIGNATURE, seq.max)] + [(bucket_signature(v), v) for v in sorted(seq.values)]


def converted_signatures(seq: SeqLen) -> list[tuple[str, int]]:
    """The signatures that are converted (each its own subgraph); ``s<longest>`` is added later as
    an alias of ``serving_default`` (see ``add_signature_alias``)."""
    sigs = signature_lengths(seq)
    return sigs if len(sigs) == 1 else sigs[:-1]


def needs_segment_ids(model: EdgeModel) -> bool:
    """Whether the file gets a ``segment_ids`` input (the Task Library's BERT APIs feed three tensors)."""
    return model.config.token_types == "keep" or model.task in METADATA_TASKS


def file_input_names(model: EdgeModel) -> tuple[str, ...]:
    return ("input_ids", "attention_mask") + ((SEGMENT,) if needs_segment_ids(model) else ())


def _wrapper(model: EdgeModel) -> Any:
    """The module litert-torch traces: keyword inputs named as in the file, dict outputs named per task."""
    import torch

    use_types = model.config.token_types == "keep"
    names = model.output_names

    class Export(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    segment_ids: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
            out = self.inner(input_ids, attention_mask, segment_ids if use_types else None)
            return dict(zip(names, out))

    return Export(model).eval()


def signature_tensors(model_content: bytes, signature: str = SIGNATURE) -> dict[str, dict[str, str]]:
    """Signature input/output names -> tensor names (what the metadata writers key on).

    Tensor names are not stable across rewrites (the quantizer renames outputs ``..._dequant``);
    the signature maps are.
    """
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=bytes(model_content)).get_signature_runner(signature)
    return {"inputs": {k: d["name"] for k, d in runner.get_input_details().items()},
            "outputs": {k: d["name"] for k, d in runner.get_output_details().items()}}


def has_offset_buffers(model_content: bytes) -> bool:
    """Whether weights live after the flatbuffer (``Buffer.offset``) instead of inside it."""
    from ai_edge_litert import schema_py_generated as schema

    m = schema.Model.GetRootAsModel(bytearray(model_content), 0)
    return any(m.Buffers(i).Offset() > 1 for i in range(m.BuffersLength()))


def inline_buffers(model_content: bytes) -> bytes:
    """The same model with every weight inside the flatbuffer.

    ai-edge-quantizer appends weights after the flatbuffer (offset buffers) once they pass 256 KiB.
    Runtimes and tools older than that schema extension (the Task Library's bundled interpreter,
    tflite-support's metadata writers, older Android LiteRT) silently drop them and get a model
    without weights, so files under the 2 GiB flatbuffer limit are written inline.
    """
    if not has_offset_buffers(model_content):
        return model_content
    if len(model_content) >= 2**31 - 2**24:
        raise ExportError("the model is too large (>= 2 GiB) for an inline-weight .tflite file")
    from ai_edge_litert.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(_read_object_model(model_content)))


def _read_object_model(model_content: bytes) -> Any:
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_content))
    for b in model.buffers:
        if b.data is not None and not isinstance(b.data, np.ndarray):
            b.data = np.frombuffer(bytes(b.data), dtype=np.uint8)  # packs as one vector, not byte by byte
    return model


def add_signature_alias(model_content: bytes, alias: str, of: str = SIGNATURE) -> bytes:
    """The same model with a second signature name for an existing signature's subgraph.

    ``s<longest>`` of a multi-length file is ``serving_default`` under its bucket name: an alias
    costs a few bytes where a converted signature costs a whole subgraph (operators, tensors,
    names: about 50 KB per subgraph for a 2-layer model).
    """
    import copy as _copy

    from ai_edge_litert.tools import flatbuffer_utils

    model = _read_object_model(model_content)
    keys = [sd.signatureKey.decode() if isinstance(sd.signatureKey, bytes) else sd.signatureKey
            for sd in model.signatureDefs]
    if alias in keys:
        return model_content
    sd = _copy.deepcopy(model.signatureDefs[keys.index(of)])
    sd.signatureKey = alias
    model.signatureDefs.append(sd)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def vocab_file(model: EdgeModel, tokenizer: Any, folder: Path) -> Path | None:
    """The WordPiece vocabulary of the model's checkpoint, as the ``vocab.txt`` the Task Library reads."""
    source = Path(model.info.source)
    if (source / "vocab.txt").is_file():
        return source / "vocab.txt"
    if tokenizer is None:
        return None  # no tokenizer means no metadata, which the record notes
    vocab = tokenizer.get_vocab()
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        return None
    path = folder / "vocab.txt"
    path.write_text("\n".join(t for t, _ in by_id) + "\n", encoding="utf-8")
    return path


class TFLiteConverter(Converter):
    name = "tflite"
    suffix = ".tflite"
    order = 50
    apps = ("android",)
    extra = "tflite"
    requires = ("litert_torch", "ai_edge_litert", "ai_edge_quantizer")
    # int8-dynamic first: ``--precision int8`` means the variant needing no calibration data.
    precisions = (Precision.FP32, Precision.FP16, Precision.INT8_DYNAMIC, Precision.INT8_WEIGHT, Precision.INT8_STATIC)
    tolerances = {
        Precision.FP32: FP32_BOUND,
        Precision.FP16: FP16_BOUND,
        # Per-channel int8-dynamic keeps MiniLM at 0.994 (seq 64) and a file with one layer x1.10
        # reaches 0.984, which INT8_ACT_BOUND (0.975) let pass: benchmarks/results/tolerances.md.
        Precision.INT8_DYNAMIC: INT8_BOUND,
        Precision.INT8_WEIGHT: INT8_BOUND,
        Precision.INT8_STATIC: INT8_ACT_BOUND,
    }
    seq_kinds = ("fixed", "enumerated")
    flags = (Flag("metadata", "tflite: write no Task Library metadata", default=True, kind="no_switch"),)
    description = "LiteRT/TFLite builtin-op model (Android); Task Library metadata for QA and classifiers"

    # ---- conversion ---------------------------------------------------------------------------

    def convert(self, ctx: ConvertContext, dest: Path) -> ConvertResult:
        import torch

        from edgekit.core.console import console

        model, options = ctx.model, ctx.options
        seq = options.seq_len.max  # the serving_default length
        sigs = signature_lengths(options.seq_len)
        notes: list[str] = []
        opts: dict[str, Any] = {"signature": SIGNATURE, "signatures": dict(sigs)}
        if model.task == Task.QUESTION_ANSWERING and seq != TASK_LIBRARY_QA_SEQ_LEN:
            notes.append(f"sequence length {seq}: the Task Library's BertQuestionAnswerer feeds "
                         f"{TASK_LIBRARY_QA_SEQ_LEN} tokens and will not run this file (LiteRT interpreter only)")
        model = copy.deepcopy(model).eval()  # never touch the caller's model
        # An added [1, 1, 1, S] bias instead of a select: XNNPACK takes the ADD, while a broadcasting
        # SELECT_V2 per layer leaves the delegate (DESIGN.md, "Peers": the attention mask per runtime).
        # Safe for int8-static too: its recipe quantises fully-connected layers only, so no calibrated
        # range spans the -1e4 bias (the reason the other targets keep the select).
        model.additive_mask = True
        if len(sigs) > 1:
            # One position table for every signature instead of a folded [S, hidden] copy per length.
            model.embeddings.position_rows = seq
            notes.append(f"signatures {', '.join(n for n, _ in sigs)}: one subgraph per length over shared "
                         f"weights; pick the smallest length that fits (serving_default = {seq})")
        names = file_input_names(model)
        samples = {}
        for sig, length in converted_signatures(options.seq_len):
            example = ctx.signature.example_feeds(length)
            samples[sig] = {n: torch.from_numpy(example.get("token_type_ids" if n == SEGMENT else n,
                                                            np.zeros((1, length), dtype=np.int32))) for n in names}
        lengths = ", ".join(f"[1, {n}]" for _, n in sigs[1:] or sigs)
        console.print(f"    litert-torch: converting {model.config.arch} {model.task} at {lengths}")
        buf = inline_buffers(self._float_model(model, samples))
        # Files that carry Task Library metadata must also compute right in its (older) runtime.
        task_library = ctx.flag("metadata") and model.task in METADATA_TASKS
        opts["quantization"] = self._quantization_recipe(options.precision, task_library)
        if task_library and options.precision == Precision.INT8_DYNAMIC:
            notes.append("int8-dynamic with Task Library metadata uses per-tensor FC weights (its runtime miscomputes "
                         "per-channel hybrid kernels); if parity fails, export int8-weight (per-channel, float "
                         "compute), or --no-metadata for LiteRT-only apps (per-channel int8-dynamic)")
        if options.precision != Precision.FP32:
            calib = None
            if options.precision == Precision.INT8_STATIC:
                feeds = [{SEGMENT if n == "token_type_ids" else n: v for n, v in f.items()} for f in ctx.calibration()]
                if SEGMENT in names:  # the file always takes segment ids; a model without token types reads zeros
                    feeds = [{**f, SEGMENT: f.get(SEGMENT, np.zeros_like(f["input_ids"]))} for f in feeds]
                # Every signature is its own subgraph with its own activation tensors: calibrate each
                # at its length (the feeds are padded to the longest; shorter ones take their prefix).
                calib = {sig: [{n: v[:, :length] for n, v in f.items()} for f in feeds]
                         for sig, length in converted_signatures(options.seq_len)}
                opts["calibration_samples"] = len(feeds)
                opts["calibration_source"] = ctx.calibration_info["source"]
            console.print(f"    ai-edge-quantizer: {options.precision}")
            buf = inline_buffers(self._quantize(buf, options.precision, calib, task_library))
        if len(sigs) > 1:
            buf = add_signature_alias(buf, bucket_signature(seq))
        ops = op_report(buf)
        opts["ops"] = ops["ops"]
        opts["int8_activation_ops"] = ops["int8_activation_ops"]
        if ops["flex"] or ops["custom"]:
            raise ExportError(
                f"the model needs non-builtin ops (Flex: {ops['flex']}, custom: {ops['custom']}); stock LiteRT "
                "interpreters cannot run it. Report the layer that produced them."
            )
        for sig, _ in sigs:
            got = signature_tensors(buf, sig)
            if set(got["inputs"]) != set(names) or set(got["outputs"]) != set(model.output_names):
                raise ExportError(f"the converted signature {sig} is {got}, expected inputs {names} and outputs "
                                  f"{model.output_names}")
        io = signature_tensors(buf)
        opts["tensors"] = io
        opts["metadata"] = self._write(buf, ctx, dest, io, notes)
        dim: int | str = seq if len(sigs) == 1 else "seq"
        inputs = [TensorSpec(n, [1, dim], "int32") for n in names]
        outputs = list(ctx.signature.outputs)
        versions = self.versions()
        if opts["metadata"].get("written"):
            versions["tflite-support"] = opts["metadata"]["tflite_support"]
        return ConvertResult(versions=versions, options=opts, notes=notes, inputs=inputs, outputs=outputs)

    @staticmethod
    def versions() -> dict[str, str]:
        from importlib.metadata import PackageNotFoundError, version

        out = {}
        for dist in ("litert-torch", "ai-edge-litert", "ai-edge-quantizer"):
            try:
                out[dist] = version(dist)
            except PackageNotFoundError:
                pass
        return out

    @staticmethod
    def _float_model(model: EdgeModel, samples: dict[str, dict[str, Any]]) -> bytes:
        """The fp32 .tflite bytes; memoised so exporting several precisions converts once."""
        key = _model_key(model, samples)
        if key in _FLOAT_CACHE:
            _FLOAT_CACHE.move_to_end(key)
            return _FLOAT_CACHE[key]
        buf = TFLiteConverter._convert_float(model, samples)
        _FLOAT_CACHE[key] = buf
        # A few tiny models or one or two base-sized ones; never more than ~1 GB.
        while len(_FLOAT_CACHE) > 1 and (len(_FLOAT_CACHE) > 6 or sum(map(len, _FLOAT_CACHE.values())) > 2**30):
            _FLOAT_CACHE.popitem(last=False)
        return buf

    @staticmethod
    def _convert_float(model: EdgeModel, samples: dict[str, dict[str, Any]]) -> bytes:
        """One conversion with a signature per entry of ``samples``, in order (the first is subgraph 0).

        litert-torch lowers every signature into its own subgraph and stores identical constants
        (the weights) once, so a file with three lengths is barely larger than one with one.
        """
        import litert_torch

        wrapper = _wrapper(model)
        try:
            conv = None
            for sig, sample in samples.items():
                conv = (litert_torch.signature(sig, wrapper, sample_kwargs=sample) if conv is None
                        else conv.signature(sig, wrapper, sample_kwargs=sample))
            edge = conv.convert()
        except Exception as e:
            raise ExportError(f"litert-torch could not convert the model: {type(e).__name__}: {e}") from e
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.tflite"
            edge.export(str(path))
            return path.read_bytes()

    @staticmethod
    def _quantization_recipe(precision: Precision, task_library: bool) -> dict[str, Any]:
        """What each precision does, as recorded in the sidecar."""
        fc = "per-tensor" if task_library else "per-channel"
        return {
            Precision.FP32: {"weights": "fp32", "compute": "fp32"},
            Precision.FP16: {"weights": "fp16 (all supported ops)", "compute": "fp32 (dequantised weights)"},
            Precision.INT8_DYNAMIC: {
                "weights": f"int8 {fc} FULLY_CONNECTED, int8 per-tensor EMBEDDING_LOOKUP"
                           + ("; ffn_out FULLY_CONNECTED int8 per-channel" if task_library else ""),
                "compute": "int8 FULLY_CONNECTED/EMBEDDING_LOOKUP with activations quantised at run time; "
                           + ("ffn_out FULLY_CONNECTED and " if task_library else "") + "other ops fp32",
                "why": ("per-tensor FC: the Task Library's runtime miscomputes per-channel hybrid kernels; ffn_out "
                        "float: one weight scale per tensor there lost 1.37 F1 on SQuAD"
                        if task_library else "per-channel FC: LiteRT 2.x hybrid kernels"),
            },
            Precision.INT8_WEIGHT: {"weights": "int8 per-channel FULLY_CONNECTED, int8 per-tensor EMBEDDING_LOOKUP",
                                    "compute": "fp32 (FC weights dequantised; embedding lookup in int8)"},
            Precision.INT8_STATIC: {"weights": "int8 per-channel (FULLY_CONNECTED, EMBEDDING_LOOKUP)",
                                    "compute": "encoder q/k/v/o/ffn_in FULLY_CONNECTED int8 x int8 (calibrated "
                                               "activations); ffn_out, task head, softmax, layer norm, GELU, "
                                               "attention matmuls fp32"},
        }[precision]

    @staticmethod
    def _quantize(buf: bytes, precision: Precision, calibration: dict[str, list[dict[str, np.ndarray]]] | None,
                  task_library: bool = False) -> bytes:
        """Rewrite the fp32 model for ``precision``; ``task_library``: stay within what its runtime computes right."""
        from ai_edge_quantizer import quantizer, qtyping
        from ai_edge_quantizer.algorithm_manager import AlgorithmName

        ops = qtyping.TFLOperationName
        per_tensor, per_channel = qtyping.QuantGranularity.TENSORWISE, qtyping.QuantGranularity.CHANNELWISE
        q = quantizer.Quantizer(bytearray(buf))
        if precision == Precision.FP16:
            q.add_weight_only_config(regex=".*", operation_name=ops.ALL_SUPPORTED, num_bits=16,
                                     algorithm_key=AlgorithmName.FLOAT_CASTING)
        elif precision == Precision.INT8_DYNAMIC:
            # The Task Library's runtime (tflite-support 0.4.4, as bundled in Android apps) runs
            # per-channel hybrid kernels without an error but with wrong numbers (measured: no
            # answer at all where LiteRT 2.x answers correctly), so its files get per-tensor FCs.
            # Per-tensor embedding tables cost little accuracy (cosine 0.998 on all-MiniLM-L6-v2).
            q.add_dynamic_config(regex=".*", operation_name=ops.FULLY_CONNECTED, num_bits=8,
                                 granularity=per_tensor if task_library else per_channel)
            q.add_dynamic_config(regex=".*", operation_name=ops.EMBEDDING_LOOKUP, num_bits=8, granularity=per_tensor)
            if task_library:
                # The FFN down-projection (it multiplies the GELU outputs, whose outliers also keep it
                # float in int8-static and ONNX) gets int8 per-channel weights computed in float, as
                # int8-weight does, which the Task Library computes right. Shared SQuAD model, 1,000
                # dev questions: -1.37 F1, cosine 0.967 as a per-tensor hybrid FC; +0.67, 0.998 so.
                q.add_weight_only_config(regex=FFN_OUT_SCOPE, operation_name=ops.FULLY_CONNECTED, num_bits=8,
                                         granularity=per_channel)
        elif precision == Precision.INT8_WEIGHT:
            q.add_weight_only_config(regex=".*", operation_name=ops.FULLY_CONNECTED, num_bits=8, granularity=per_channel)
            q.add_dynamic_config(regex=".*", operation_name=ops.EMBEDDING_LOOKUP, num_bits=8, granularity=per_tensor)
        elif precision == Precision.INT8_STATIC:
            # Later scopes override earlier ones: every FC gets int8 weights, then the encoder's FCs
            # (tensor names carry the module path ``...Layer_<i>/...``) also get int8 activations.
            # The task head keeps float activations: its outputs are the logits parity is about.
            q.add_weight_only_config(regex=".*", operation_name=ops.FULLY_CONNECTED, num_bits=8)
            q.add_weight_only_config(regex=".*", operation_name=ops.EMBEDDING_LOOKUP, num_bits=8)
            q.add_static_config(regex=ENCODER_SCOPE, operation_name=ops.FULLY_CONNECTED, activation_num_bits=8,
                                weight_num_bits=8)
            # The FFN output projection reads GELU outputs, whose outliers an 8-bit range cannot hold
            # (all-MiniLM-L6-v2 hidden-state cosine 0.83 with it in int8, 0.987 without).
            q.add_weight_only_config(regex=FFN_OUT_SCOPE, operation_name=ops.FULLY_CONNECTED, num_bits=8)
            # A head op's fused tensor name can mention the last layer too: keep the head float.
            q.add_weight_only_config(regex=HEAD_SCOPE, operation_name=ops.FULLY_CONNECTED, num_bits=8)
        else:
            raise UsageError(f"tflite has no {precision} recipe")
        result = None
        if q.need_calibration:
            if not calibration:
                raise UsageError("int8-static needs calibration samples")
            result = q.calibrate(calibration, num_threads=max(1, min(4, os.cpu_count() or 1)))
        try:
            return bytes(q.quantize(result, enable_progress_report=False).quantized_model)
        except Exception as e:
            raise ExportError(f"ai-edge-quantizer failed for {precision}: {type(e).__name__}: {e}") from e

    def _write(self, buf: bytes, ctx: ConvertContext, dest: Path, io: dict[str, dict[str, str]],
               notes: list[str]) -> dict[str, Any]:
        """Write the file at ``dest``, with Task Library metadata when possible; say what happened."""
        from edgekit.targets.tflite import tasklib

        model = ctx.model
        kind = METADATA_TASKS.get(model.task)
        info: dict[str, Any] = {"written": False}
        plain = Path(dest)
        if not ctx.flag("metadata"):
            info["reason"] = "disabled (--no-metadata)"
        elif kind is None:
            info["reason"] = f"the Task Library has no BERT API for {model.task}"
        else:
            reason = tasklib.unavailable()
            if reason:
                info["reason"] = reason
                notes.append(f"Task Library metadata not written: {reason}")
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    src = Path(tmp) / "plain.tflite"
                    src.write_bytes(buf)
                    vocab = vocab_file(model, ctx.tokenizer, Path(tmp))
                    if vocab is None:
                        info["reason"] = f"no WordPiece vocab.txt or tokenizer in {model.info.source}"
                        notes.append(f"Task Library metadata not written: {info['reason']}")
                    else:
                        outputs = ({"probability": io["outputs"]["logits"]} if kind == "classifier"
                                   else {n: io["outputs"][n] for n in ("start_logits", "end_logits")})
                        meta = tasklib.write_metadata(
                            src, plain, kind=kind, vocab=vocab, labels=list(model.config.labels),
                            inputs={"ids": io["inputs"]["input_ids"], "mask": io["inputs"]["attention_mask"],
                                    "segment_ids": io["inputs"][SEGMENT]},
                            outputs=outputs, name=f"{Path(model.info.source).name} {model.task}",
                            description=f"edgekit {model.config.arch} {model.task} export",
                        )
                        info = {"written": True, "kind": kind, "packed_files": ["vocab.txt"]
                                + (["labels.txt"] if kind == "classifier" else []),
                                "input_tensor_metadata": ["ids", "mask", "segment_ids"],
                                "output_tensor_metadata": list(outputs), **meta}
                        return info
        plain.write_bytes(buf)
        return info

    def second_client_unavailable(self) -> str | None:
        from edgekit.targets.tflite import tasklib

        return tasklib.unavailable()

    def validation_unavailable(self, record: ArtifactRecord) -> str | None:
        import importlib.util

        if importlib.util.find_spec("ai_edge_litert") is None:
            return "the LiteRT interpreter (ai-edge-litert) is not installed: pip install 'edgekit[tflite]'"
        return None

    # ---- second client: the Task Library ------------------------------------------------------
    def extra_validation(self, path: Path, record: ArtifactRecord, model: EdgeModel, tokenizer: Any = None,
                         verbose: bool = True) -> None:
        """Run the Task Library on the file and compare with edgekit's answers/labels on the same file.

        Writes ``record.options["task_library"]``; a disagreement turns a validated record into
        parity-failed, a missing environment or missing metadata is noted as skipped with the reason.
        """
        from edgekit.core.console import console
        from edgekit.core.record import Status
        from edgekit.targets.tflite.tasklib import TFLITE_SUPPORT
        from edgekit.targets.tflite.tasklib.check import ClientCheck, check_classification, check_question_answering

        task = Task.parse(record.task)
        kind = METADATA_TASKS.get(task)
        if kind is None:
            return
        client = f"{TFLITE_SUPPORT} {'BertQuestionAnswerer' if kind == 'qa' else 'BertNLClassifier'}"
        meta = record.options.get("metadata") or {}
        seq = record.seq_len.max  # the Task Library runs serving_default, the longest length
        if not meta.get("written"):
            result = ClientCheck(client, "skipped", reason=f"no Task Library metadata in the file ({meta.get('reason')})")
        elif kind == "qa" and seq != TASK_LIBRARY_QA_SEQ_LEN:
            result = ClientCheck(client, "skipped", reason=f"BertQuestionAnswerer feeds {TASK_LIBRARY_QA_SEQ_LEN} "
                                 f"tokens; this file takes {seq}")
        else:
            try:
                if tokenizer is None:
                    from edgekit.model.modeling import load_tokenizer

                    tokenizer = load_tokenizer(record.source.source)
                runner = self.load(path, record)
                if kind == "qa":
                    from edgekit.core.tolerance import Tolerance

                    tol = Tolerance(**{k: v for k, v in record.tolerance.items() if k != "min_agreement"})
                    result = check_question_answering(path, runner, tokenizer, seq, tolerance=tol)
                else:
                    result = check_classification(path, runner, tokenizer, model.config.labels, seq)
            except Exception as e:  # noqa: BLE001 - a client that cannot run the file is a finding
                result = ClientCheck(client, "error", reason=f"{type(e).__name__}: {e}")
        record.options["task_library"] = result.to_dict()
        if result.status == "skipped":
            record.notes.append(f"Task Library validation skipped: {result.reason}")
        elif result.status in ("disagreed", "error") and record.status == Status.VALIDATED:
            record.status = Status.PARITY_FAILED
            record.reason = f"{client}: {result.reason}"
        if verbose:
            mark = {"agreed": "[green]✓[/]", "skipped": "[yellow]-[/]"}.get(result.status, "[red]✗[/]")
            detail = result.reason or (f"{result.agreement:.0%} agreement" if result.agreement is not None else "")
            console.print(f"    {mark} Task Library ({client}): {result.status}: {detail}")

    # ---- loading ------------------------------------------------------------------------------
    def load(self, path: Path, record: ArtifactRecord, threads: int | None = None) -> LiteRTRunner:
        return LiteRTRunner(Path(path), record, threads)


CONVERTER = TFLiteConverter()
