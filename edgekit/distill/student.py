"""Build a DistilBERT student from a BERT-family teacher by copying weights (the DistilBERT recipe).

The student is an ordinary ``transformers`` ``DistilBert*`` model: same width as the teacher, fewer layers,
no token-type embeddings and no pooler. It starts from the teacher's embeddings, a subset of its layers and
(for masked-LM teachers) its MLM head.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgekit.core.errors import ModelLoadError, UsageError

log = logging.getLogger(__name__)

# The layer map of the reference implementation (transformers research_projects/distillation) for 12 layers.
REFERENCE_12_TO_6 = (0, 2, 4, 7, 9, 11)

MLM = "mlm"          # teacher has a masked-LM head: student is DistilBertForMaskedLM
ENCODER = "encoder"  # sentence encoder without MLM head: student is DistilBertModel

# BERT layer parameter name -> DistilBERT TransformerBlock parameter name.
_BERT_LAYER_MAP = {
    "attention.self.query": "attention.q_lin",
    "attention.self.key": "attention.k_lin",
    "attention.self.value": "attention.v_lin",
    "attention.output.dense": "attention.out_lin",
    "attention.output.LayerNorm": "sa_layer_norm",
    "intermediate.dense": "ffn.lin1",
    "output.dense": "ffn.lin2",
    "output.LayerNorm": "output_layer_norm",
}
_SUPPORTED = ("bert", "distilbert")


@dataclass
class Teacher:
    """A loaded teacher: the model, its family (``bert``/``distilbert``) and whether it has an MLM head."""

    model: nn.Module
    model_type: str
    kind: str  # MLM or ENCODER

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def num_layers(self) -> int:
        c = self.config
        return c.n_layers if self.model_type == "distilbert" else c.num_hidden_layers

    def encoder(self) -> nn.Module:
        """The bare encoder (BertModel / DistilBertModel) whose forward returns last_hidden_state."""
        m = self.model
        for name in ("bert", "distilbert"):
            sub = getattr(m, name, None)
            if isinstance(sub, nn.Module):
                return sub
        return m

    def mlm_head(self) -> nn.Module | None:
        """A module mapping hidden states to vocabulary logits, or None for encoder-only teachers."""
        if self.kind != MLM:
            return None
        if self.model_type == "bert":
            return self.model.cls
        return DistilBertMLMHead(self.model)

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Last hidden states. BERT teachers get their token types; DistilBERT ones have none."""
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.model_type == "bert" and token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        return self.encoder()(**kwargs).last_hidden_state


class DistilBertMLMHead(nn.Module):
    """The MLM head of a DistilBertForMaskedLM as one module (it is four attributes of the model)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.m = model

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        m = self.m
        return m.vocab_projector(m.vocab_layer_norm(m.activation(m.vocab_transform(hidden))))


def _has_mlm_weights(path: Path) -> bool | None:
    """Whether the checkpoint in ``path`` holds MLM-head weights (None if it cannot be told from the files)."""
    files = sorted(path.glob("*.safetensors"))
    if not files:
        return None
    from safetensors import safe_open

    for f in files:
        with safe_open(str(f), framework="pt") as fh:
            if any(k.startswith(("cls.predictions", "vocab_projector", "vocab_transform")) for k in fh.keys()):
                return True
    return False


def load_teacher(source: str | os.PathLike | nn.Module, kind: str | None = None) -> Teacher:
    """Load a teacher from a local HF folder (or wrap an in-memory model).

    ``kind`` forces ``"mlm"`` or ``"encoder"``; by default a folder whose weights contain an MLM head is loaded
    as a masked-LM model and anything else as a plain encoder.
    """
    if kind not in (None, MLM, ENCODER):
        raise UsageError(f"teacher kind must be {MLM!r} or {ENCODER!r}, not {kind!r}")
    if isinstance(source, nn.Module):
        model = source
        mt = getattr(model.config, "model_type", None)
        if mt not in _SUPPORTED:
            raise UsageError(f"teacher model_type {mt!r} is not supported; use a BERT or DistilBERT model")
        has_head = hasattr(model, "cls") or hasattr(model, "vocab_projector")
        found = MLM if has_head else ENCODER
        if kind == MLM and not has_head:
            raise UsageError("kind='mlm' was asked for but this teacher has no MLM head")
        return Teacher(model.eval(), mt, kind or found)

    path = Path(source)
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} is not a Hugging Face model folder (no config.json); "
                             "pass a folder written by save_pretrained")
    from edgekit.model.preflight import check_model_folder

    check_model_folder(path)  # readable weights, tensors only (a code-carrying pickle is refused here)
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

    config = AutoConfig.from_pretrained(str(path))
    if config.model_type not in _SUPPORTED:
        raise UsageError(f"teacher {path} is a {config.model_type!r} model; edgekit distils BERT and DistilBERT "
                         "teachers (the student copies their layer layout)")
    if kind is None:
        has = _has_mlm_weights(path)
        if has is None:
            has = any("MaskedLM" in a or "ForPreTraining" in a for a in (config.architectures or []))
        kind = MLM if has else ENCODER
    try:
        cls = AutoModelForMaskedLM if kind == MLM else AutoModel
        model = cls.from_pretrained(str(path), add_pooling_layer=False) if (
            kind == ENCODER and config.model_type == "bert") else cls.from_pretrained(str(path))
    except (OSError, ValueError, RuntimeError) as e:
        raise ModelLoadError(f"could not load teacher from {path}: {e}") from e
    return Teacher(model.eval(), config.model_type, kind)


def default_layer_map(teacher_layers: int, student_layers: int | None = None) -> list[int]:
    """Which teacher layers initialise the student.

    12 -> 6 uses the reference map [0, 2, 4, 7, 9, 11]; half depth otherwise takes every other layer; other
    depths spread the chosen layers evenly from the first to the last layer.
    """
    n = student_layers if student_layers is not None else max(1, (teacher_layers + 1) // 2)
    if not 1 <= n <= teacher_layers:
        raise UsageError(f"the student needs between 1 and {teacher_layers} layers, not {n}")
    if teacher_layers == 12 and n == 6:
        return list(REFERENCE_12_TO_6)
    if n == (teacher_layers + 1) // 2:
        return list(range(0, teacher_layers, 2))[:n]
    if n == 1:
        return [0]
    return [round(i * (teacher_layers - 1) / (n - 1)) for i in range(n)]


def _check_layer_map(layers: list[int], teacher_layers: int) -> None:
    if not layers:
        raise UsageError("the layer map is empty; give at least one teacher layer")
    bad = [i for i in layers if not 0 <= i < teacher_layers]
    if bad:
        raise UsageError(f"layer map {layers} names layers {bad} but the teacher has layers 0..{teacher_layers - 1}")
    if sorted(set(layers)) != list(layers):
        raise UsageError(f"layer map {layers} must be strictly increasing (each teacher layer used once, in order)")


def student_config(teacher: Teacher, n_layers: int, dropout: float | None = None,
                   tie_word_embeddings: bool = True) -> Any:
    """A DistilBertConfig with the teacher's width and ``n_layers`` layers."""
    from transformers import DistilBertConfig

    c = teacher.config
    if teacher.model_type == "distilbert":
        kw = dict(vocab_size=c.vocab_size, max_position_embeddings=c.max_position_embeddings, dim=c.dim,
                  n_heads=c.n_heads, hidden_dim=c.hidden_dim, activation=c.activation, dropout=c.dropout,
                  attention_dropout=c.attention_dropout, initializer_range=c.initializer_range,
                  pad_token_id=c.pad_token_id)
    else:
        if getattr(c, "position_embedding_type", "absolute") not in (None, "absolute"):
            raise UsageError("the teacher uses relative position embeddings; a DistilBERT student has absolute "
                             "ones and cannot copy them")
        eps = getattr(c, "layer_norm_eps", 1e-12)
        if abs(eps - 1e-12) > 1e-15:
            log.warning("teacher LayerNorm eps is %g; DistilBERT fixes it at 1e-12 (outputs differ slightly)", eps)
        kw = dict(vocab_size=c.vocab_size, max_position_embeddings=c.max_position_embeddings, dim=c.hidden_size,
                  n_heads=c.num_attention_heads, hidden_dim=c.intermediate_size, activation=c.hidden_act,
                  dropout=c.hidden_dropout_prob, attention_dropout=c.attention_probs_dropout_prob,
                  initializer_range=c.initializer_range, pad_token_id=c.pad_token_id or 0)
    if dropout is not None:
        kw["dropout"] = kw["attention_dropout"] = dropout
    return DistilBertConfig(n_layers=n_layers, tie_word_embeddings=tie_word_embeddings, **kw)


def _teacher_tensors(teacher: Teacher) -> dict[str, torch.Tensor]:
    """The teacher's weights renamed into DistilBERT's names, per teacher layer ("layer.{i}." prefix)."""
    sd = teacher.model.state_dict()
    out: dict[str, torch.Tensor] = {}
    if teacher.model_type == "distilbert":
        pre = "distilbert." if any(k.startswith("distilbert.") for k in sd) else ""
        for k, v in sd.items():
            if k.startswith(pre + "embeddings."):
                out[k[len(pre):]] = v
            elif k.startswith(pre + "transformer.layer."):
                out["layer." + k[len(pre + "transformer.layer."):]] = v
            elif k.split(".")[0] in ("vocab_transform", "vocab_layer_norm", "vocab_projector"):
                out["head." + k] = v
        return out
    pre = "bert." if any(k.startswith("bert.") for k in sd) else ""
    # BERT adds token_type_embeddings[type] to every token. The student has no token types, so type 0 (all
    # single-segment input) is folded into the position table: the sum is unchanged for such input.
    word = sd[pre + "embeddings.word_embeddings.weight"]
    pos = sd[pre + "embeddings.position_embeddings.weight"]
    tt = sd.get(pre + "embeddings.token_type_embeddings.weight")
    out["embeddings.word_embeddings.weight"] = word
    out["embeddings.position_embeddings.weight"] = pos + tt[0] if tt is not None else pos
    out["embeddings.LayerNorm.weight"] = sd[pre + "embeddings.LayerNorm.weight"]
    out["embeddings.LayerNorm.bias"] = sd[pre + "embeddings.LayerNorm.bias"]
    lp = pre + "encoder.layer."
    for k, v in sd.items():
        if not k.startswith(lp):
            continue
        idx, rest = k[len(lp):].split(".", 1)
        mod, leaf = rest.rsplit(".", 1)
        if mod not in _BERT_LAYER_MAP:
            raise ModelLoadError(f"unexpected teacher parameter {k!r}: this is not a standard BERT layer")
        out[f"layer.{idx}.{_BERT_LAYER_MAP[mod]}.{leaf}"] = v
    if teacher.kind == MLM:
        p = "cls.predictions."
        out["head.vocab_transform.weight"] = sd[p + "transform.dense.weight"]
        out["head.vocab_transform.bias"] = sd[p + "transform.dense.bias"]
        out["head.vocab_layer_norm.weight"] = sd[p + "transform.LayerNorm.weight"]
        out["head.vocab_layer_norm.bias"] = sd[p + "transform.LayerNorm.bias"]
        out["head.vocab_projector.weight"] = sd.get(p + "decoder.weight", word)
        out["head.vocab_projector.bias"] = sd.get(p + "decoder.bias", sd.get(p + "bias"))
    return out


def build_student(teacher: Teacher, layers: list[int] | None = None, n_layers: int | None = None,
                  dropout: float | None = None) -> tuple[nn.Module, list[int]]:
    """A DistilBERT student initialised from ``teacher``; returns ``(student, layer_map)``.

    Every student tensor is assigned from a teacher tensor and shapes are checked; a missing or left-over
    tensor raises :class:`ModelLoadError` rather than leaving random weights behind.
    """
    from transformers import DistilBertForMaskedLM, DistilBertModel

    if layers is None:
        layers = default_layer_map(teacher.num_layers, n_layers)
    layers = list(layers)
    _check_layer_map(layers, teacher.num_layers)
    if n_layers is not None and n_layers != len(layers):
        raise UsageError(f"--layers names {len(layers)} layers but --student-layers is {n_layers}")
    src = _teacher_tensors(teacher)
    tie = True
    if teacher.kind == MLM:
        tie = bool(torch.equal(src["head.vocab_projector.weight"], src["embeddings.word_embeddings.weight"]))
    cfg = student_config(teacher, len(layers), dropout=dropout, tie_word_embeddings=tie)
    cfg.architectures = ["DistilBertForMaskedLM" if teacher.kind == MLM else "DistilBertModel"]
    student = DistilBertForMaskedLM(cfg) if teacher.kind == MLM else DistilBertModel(cfg)

    pre = "distilbert." if teacher.kind == MLM else ""
    wanted: dict[str, torch.Tensor] = {}
    for k, v in src.items():
        if k.startswith("embeddings."):
            wanted[pre + k] = v
        elif k.startswith("head."):
            wanted[k[len("head."):]] = v
    for j, i in enumerate(layers):
        lp = f"layer.{i}."
        n_found = 0
        for k, v in src.items():
            if k.startswith(lp):
                wanted[f"{pre}transformer.layer.{j}.{k[len(lp):]}"] = v
                n_found += 1
        if n_found == 0:
            raise ModelLoadError(f"teacher layer {i} has no weights in the checkpoint")

    target = student.state_dict()
    missing = sorted(set(target) - set(wanted))
    if tie:
        missing = [k for k in missing if k != "vocab_projector.weight"]
    extra = sorted(set(wanted) - set(target))
    if missing or extra:
        raise ModelLoadError(f"teacher -> student weight map does not line up: student tensors without a source "
                             f"{missing[:8]}, teacher tensors without a place {extra[:8]}")
    for k, v in wanted.items():
        if tuple(target[k].shape) != tuple(v.shape):
            raise ModelLoadError(f"shape mismatch for {k}: student {tuple(target[k].shape)}, teacher "
                                 f"{tuple(v.shape)}")
    with torch.no_grad():
        params = dict(student.named_parameters(remove_duplicate=False))
        for k, v in wanted.items():
            if k == "vocab_projector.weight" and tie:
                continue
            params[k].copy_(v)
    if tie and hasattr(student, "vocab_projector"):
        student.vocab_projector.weight = student.distilbert.embeddings.word_embeddings.weight
    return student, layers


def save_student(student: nn.Module, out_dir: str | os.PathLike, tokenizer: Any | None = None,
                 meta: dict | None = None, state_dict: dict | None = None) -> Path:
    """Write a ``save_pretrained`` folder (safetensors weights, tokenizer without token types).

    Files are written to a temporary folder and moved in one by one with ``os.replace``, so a reader never sees a
    half-written file and other content of ``out_dir`` (checkpoints, the card) is kept.
    """
    import shutil
    import tempfile

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".save-", dir=out))
    try:
        # state_dict: the gathered weights when the live module is sharded (FSDP)
        student.save_pretrained(str(tmp), safe_serialization=True, state_dict=state_dict)
        if tokenizer is not None:
            # DistilBERT takes no token_type_ids; a saved BERT tokenizer would emit them and break `model(**enc)`.
            tokenizer.save_pretrained(str(tmp))
            tc = tmp / "tokenizer_config.json"
            if tc.is_file():
                conf = json.loads(tc.read_text())
                if conf.get("tokenizer_class") in ("BertTokenizer", "BertTokenizerFast"):
                    # Same WordPiece vocabulary; the DistilBERT class just does not emit token_type_ids.
                    conf["tokenizer_class"] = "DistilBertTokenizer"
                    tc.write_text(json.dumps(conf, indent=2))
        if meta is not None:
            (tmp / STUDENT_RECORD).write_text(json.dumps(meta, indent=2))
        for f in sorted(tmp.iterdir()):
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


STUDENT_RECORD = "edgekit_student.json"


def read_student_record(folder: str | os.PathLike) -> dict[str, Any]:
    """The record a student folder carries (teacher, layer map, earlier phases' cards); ``{}`` when it has none.

    The one reader of ``edgekit_student.json``: a damaged record is refused with what to do rather than read as
    empty, since the layer map in it decides which teacher layers the student is compared with.
    """
    path = Path(folder) / STUDENT_RECORD
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UsageError(f"{path} cannot be read ({e}); restore it from the run that wrote the folder, "
                         "or delete it to train without a layer map") from e
    if not isinstance(record, dict):
        raise UsageError(f"{path} holds a {type(record).__name__}, not a record; restore it from the run that "
                         "wrote the folder, or delete it to train without a layer map")
    return record


def load_tokenizer(path: str | os.PathLike) -> Any:
    """The fast tokenizer saved next to a model."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"no tokenizer in {path}: {e}; the teacher folder must contain tokenizer files") from e


def init_student(teacher_path: str | os.PathLike, out_dir: str | os.PathLike, layers: list[int] | None = None,
                 n_layers: int | None = None, kind: str | None = None) -> tuple[Path, list[int]]:
    """``edgekit distill init``: teacher folder -> student folder (model + tokenizer + layer map)."""
    teacher = load_teacher(teacher_path, kind=kind)
    student, layer_map = build_student(teacher, layers=layers, n_layers=n_layers)
    tok = load_tokenizer(teacher_path)
    meta = {"teacher": str(teacher_path), "teacher_type": teacher.model_type, "teacher_kind": teacher.kind,
            "teacher_layers": teacher.num_layers, "layer_map": layer_map}
    return save_student(student, out_dir, tok, meta), layer_map
