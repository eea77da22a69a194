"""The distillation training loop (Hugging Face Accelerate): one CPU, one GPU, or many processes.

Run it directly, under ``accelerate launch`` or under ``torchrun``; the same flags work everywhere::

    python -m edgekit.distill.train --teacher T --student S --data corpus.txt --out OUT
    accelerate launch --num_processes 2 --cpu -m edgekit.distill.train ...   # 2 CPU processes, gloo
    torchrun --nproc_per_node 8 -m edgekit.distill.train ... --mixed-precision bf16

``--batch-size`` is per process and micro-step; one optimizer step sees
``batch-size x processes x grad-accum`` sequences (the paper used ~4K). Each loss term is a sum divided by
the *global* count of its rows (all-reduced), so N processes on a global batch compute the same loss and
gradient as one process on that batch. Checkpoints hold model, optimizer, scheduler, RNG states and the data
position; ``--resume`` continues exactly where the checkpoint left off.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgekit.core.errors import MissingDependencyError, UsageError
from edgekit.distill.weights import LossWeights

DEFAULT_CACHE = Path(os.environ.get("EDGEKIT_CACHE", Path.home() / ".cache" / "edgekit")) / "distill"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; stored in checkpoints and the card."""

    teacher: str
    student: str                      # folder written by `edgekit distill init` (or any DistilBERT folder)
    out: str
    data: list[str] = field(default_factory=list)
    dataset: dict | None = None       # {"name", "config", "split", "text_column", "streaming", "data_files"}
    cache_dir: str = str(DEFAULT_CACHE)
    max_texts: int | None = None
    max_len: int = 128
    min_tokens: int = 12
    batch_size: int = 32              # per process and micro-step
    grad_accum: int = 1
    steps: int = 1000                 # optimizer steps
    lr: float = 5e-4
    warmup: float = 0.05              # fraction of steps with linear warm-up
    weight_decay: float = 0.0
    adam_eps: float = 1e-6
    max_grad_norm: float = 5.0
    seed: int = 56
    weights: LossWeights = field(default_factory=LossWeights)
    mlm_prob: float = 0.15
    mlm_smoothing: float = 0.7
    group_by_length: bool = True
    checkpoint_every: int = 0         # 0: only at the end
    keep_checkpoints: int = 2
    resume: str | None = None         # a checkpoint folder or "auto" (latest under out/checkpoints)
    stop_after: int | None = None     # leave after this many steps of this session, with a checkpoint (time slices)
    mixed_precision: str = "auto"     # auto | no | fp16 | bf16
    cpu: bool = False                 # train on CPU even if a GPU is present
    dropout: float | None = None
    log_every: int = 1
    progress: bool = True
    card: bool = True
    teacher_kind: str | None = None
    drop_held_out: bool = False       # skip the sentences reserved for held-out scoring (corpus.is_held_out)
    teacher_cache: bool = True        # encoder-only teachers, pooled terms only: cache teacher embeddings
    threads: int | None = None        # PyTorch threads, kept all run; None: the free cores, followed

    def to_json(self) -> dict:
        d = asdict(self)
        return d

    @classmethod
    def from_json(cls, d: dict) -> TrainConfig:
        d = dict(d)
        d["weights"] = LossWeights(**d.get("weights", {}))
        return cls(**d)


#: Field metadata key of a config dataclass: the value a checkpoint written before the field existed trained
#: with, when that is not the field's default today (``recipe_changes``).
ABSENT = "absent_from_older_checkpoints"

#: ``TrainConfig`` fields a resumed run may set otherwise: where things are and how this session runs. Every
#: other field is the recipe, which a resumed run must keep (``recipe_changes``).
RESUME_MAY_CHANGE = frozenset({"teacher", "student", "out", "data", "dataset", "cache_dir", "checkpoint_every",
                               "keep_checkpoints", "resume", "stop_after", "mixed_precision", "cpu", "log_every",
                               "progress", "card", "teacher_cache", "threads"})


@dataclass
class TrainResult:
    out: Path
    steps: int
    tokens_seen: int
    tokens_per_s: float
    history: list[dict]
    final: dict


# ---------------------------------------------------------------------------------------------- helpers


def _accelerator(cfg: TrainConfig) -> Any:
    try:
        from accelerate import Accelerator
    except ImportError as e:
        raise MissingDependencyError("distillation training", "distill", "accelerate") from e
    import torch

    mp = cfg.mixed_precision
    gpu = torch.cuda.is_available() and not cfg.cpu
    if mp == "auto":
        if gpu:
            mp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            mp = "bf16" if cpu_bf16_supported() else "no"
    if mp not in ("no", "fp16", "bf16"):
        raise UsageError(f"--mixed-precision must be auto, no, fp16 or bf16, not {cfg.mixed_precision!r}")
    if mp == "fp16" and not gpu:
        raise UsageError("--mixed-precision fp16 needs a GPU; on CPU use bf16 (if the CPU has bf16 "
                         "instructions) or no")
    if mp == "bf16" and not gpu and not cpu_bf16_supported():
        raise UsageError("--mixed-precision bf16 on CPU needs bf16 instructions (AVX-512 BF16 or AMX), "
                         "which this CPU lacks; use --mixed-precision no")
    # Without cpu=True Accelerate ignores torchrun's environment on GPU-less machines (no gloo process group).
    cpu = cfg.cpu or not torch.cuda.is_available()
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state and str(AcceleratorState._shared_state.get("_mixed_precision", mp)) != mp:
        # Accelerate keeps one precision per process; a later run in the same process (tests, the benchmark's
        # fp32-vs-bf16 runs) may ask for another. The process group (PartialState) is kept.
        AcceleratorState._reset_state()
    # Gradient accumulation is done by hand (exact loss normalisation), so Accelerate sees 1.
    return Accelerator(mixed_precision=mp, gradient_accumulation_steps=1, cpu=cpu)


def cpu_bf16_supported() -> bool:
    """True when this CPU runs bf16 matrix products natively (AVX-512 BF16 / AMX), so bf16 autocast pays off.

    Without these instructions oneDNN emulates bf16 and autocast is slower than fp32: we then train in fp32.
    ``EDGEKIT_NO_BF16=1`` forces the fp32 path.
    """
    import torch

    if os.environ.get("EDGEKIT_NO_BF16"):
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()) and _cpu_has_bf16_flag()
    except (AttributeError, RuntimeError):
        return False


def _cpu_has_bf16_flag() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False  # not Linux: be conservative (fp32)
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _lr_lambda(total: int, warmup_steps: int):
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total - step) / max(1, total - warmup_steps))
    return f


def _rng_state() -> dict:
    import torch

    s = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        s["cuda"] = torch.cuda.get_rng_state_all()
    return s


def _set_rng_state(s: dict) -> None:
    import torch

    torch.set_rng_state(s["cpu"])
    if "cuda" in s and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def save_checkpoint(acc: Any, model: Any, optimizer: Any, scheduler: Any, ckdir: Path, step: int,
                    state: dict, keep: int) -> Path:
    """Write ``ckdir/step-N`` atomically: safetensors model, optimizer/scheduler/RNG tensors, JSON state.

    Nothing is pickled: everything is loaded back with ``torch.load(weights_only=True)`` or safetensors.
    """
    import torch
    from safetensors.torch import save_model

    final = ckdir / f"step-{step:08d}"
    tmp = ckdir / f".tmp-step-{step:08d}"
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    acc.wait_for_everyone()
    from accelerate.utils import DistributedType

    if acc.distributed_type == DistributedType.FSDP:
        acc.save_state(str(tmp / "fsdp"))  # sharded model + optimizer; Accelerate knows the FSDP layout
    elif acc.is_main_process:
        save_model(acc.unwrap_model(model).student, str(tmp / "student.safetensors"))
        torch.save(optimizer.optimizer.state_dict() if hasattr(optimizer, "optimizer") else optimizer.state_dict(),
                   tmp / "optimizer.pt")
    if acc.is_main_process:
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        (tmp / "state.json").write_text(json.dumps(state))
    torch.save(_rng_state(), tmp / f"rng-{acc.process_index}.pt")
    acc.wait_for_everyone()
    if acc.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        old = sorted(p for p in ckdir.glob("step-*") if p != final)
        for p in old[:max(0, len(old) - (keep - 1))] if keep > 0 else []:
            shutil.rmtree(p, ignore_errors=True)
    acc.wait_for_everyone()
    return final


def load_checkpoint(acc: Any, model: Any, optimizer: Any, scheduler: Any, path: Path) -> dict:
    """Restore a checkpoint written by :func:`save_checkpoint`; returns its JSON state."""
    import torch
    from accelerate.utils import DistributedType
    from safetensors.torch import load_model

    if not (path / "state.json").is_file():
        raise UsageError(f"{path} is not an edgekit distillation checkpoint (no state.json)")
    # Accelerate's multi-CPU mode reports device "cpu:0", which safetensors and torch.load reject
    dev = "cpu" if acc.device.type == "cpu" else str(acc.device)
    if acc.distributed_type == DistributedType.FSDP:
        acc.load_state(str(path / "fsdp"))
    else:
        load_model(acc.unwrap_model(model).student, str(path / "student.safetensors"), device=dev)
        opt = optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer
        opt.load_state_dict(torch.load(path / "optimizer.pt", map_location=dev, weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    rng = path / f"rng-{acc.process_index}.pt"
    if not rng.is_file():
        raise UsageError(f"{path} was written by fewer processes; resume with the same number of processes")
    _set_rng_state(torch.load(rng, weights_only=True))
    return json.loads((path / "state.json").read_text())


def saved_config(checkpoint: Path) -> dict[str, Any]:
    """The config a checkpoint's training started with (``state.json``'s ``config``, as JSON values)."""
    try:
        return json.loads((Path(checkpoint) / "state.json").read_text()).get("config") or {}
    except (OSError, ValueError, AttributeError) as e:
        raise UsageError(f"{checkpoint} is not a readable training checkpoint (state.json: {e})") from None


def recipe_changes(saved: dict[str, Any], cfg: Any, may_change: frozenset[str]) -> dict[str, tuple[Any, Any]]:
    """What a resumed run would train otherwise than its checkpoint: ``{field: (then, now)}`` for every field
    of the config dataclass ``cfg`` outside ``may_change`` whose value differs from the checkpoint's
    ``state["config"]`` (``saved``). A field an older checkpoint lacks held its default then, or, when the
    default has changed since, the value its ``ABSENT`` metadata names.

    Without this a resumed run takes the schedule's length from the checkpoint and everything else from
    the new command line, so another ``--lr`` (or a recipe that changed between edgekit versions) gives a
    model trained half one way and half the other, under a card that names only the second."""
    from dataclasses import MISSING, fields

    changes: dict[str, tuple[Any, Any]] = {}
    for f in fields(cfg):
        if f.name in may_change:
            continue
        if ABSENT in f.metadata:
            default = f.metadata[ABSENT]
        elif f.default is not MISSING:
            default = f.default
        else:
            default = f.default_factory() if f.default_factory is not MISSING else None  # type: ignore[misc]
        then = saved[f.name] if f.name in saved else _plain(default)
        now = _plain(getattr(cfg, f.name))
        if then != now:
            changes[f.name] = (then, now)
    return changes


def _plain(value: Any) -> Any:
    """A config value as its JSON state holds it (dataclasses as dicts, tuples as lists)."""
    return json.loads(json.dumps(asdict(value) if hasattr(value, "__dataclass_fields__") else value))


def refuse_recipe_changes(checkpoint: Path, changes: dict[str, tuple[Any, Any]]) -> None:
    """A UsageError naming each changed setting, then and now, and what to do."""
    if changes:
        raise UsageError(f"{checkpoint} was trained with other settings ("
                         + ", ".join(f"{k}: {a!r} then, {b!r} now" for k, (a, b) in sorted(changes.items()))
                         + "); resume with the settings it started with, or train into another --out")


# ---------------------------------------------------------------------------------------------- training


def train(cfg: TrainConfig) -> TrainResult:
    """Distil ``cfg.teacher`` into ``cfg.student`` and save the result to ``cfg.out``."""
    import numpy as np
    import torch
    from edgekit.core.console import progress

    from edgekit.distill import data as D
    from edgekit.distill.objective import TERMS, StudentStep, combine, step_terms
    from edgekit.distill.student import MLM, load_teacher, load_tokenizer, read_student_record, save_student

    if cfg.steps < 1 or cfg.batch_size < 1 or cfg.grad_accum < 1:
        raise UsageError("--steps, --batch-size and --grad-accum must be at least 1")
    if cfg.threads is not None and cfg.threads < 1:
        raise UsageError("--threads must be at least 1")
    acc = _accelerator(cfg)
    world, rank = acc.num_processes, acc.process_index
    torch.manual_seed(cfg.seed + rank)

    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

    from edgekit.model.preflight import check_model_folder

    teacher = load_teacher(cfg.teacher, kind=cfg.teacher_kind)
    teacher.model.to(acc.device).eval()
    for p in teacher.model.parameters():
        p.requires_grad_(False)
    spath = Path(cfg.student)
    if not (spath / "config.json").is_file():
        raise UsageError(f"student {spath} is not a model folder; create it with `edgekit distill init`")
    # The type is read from the config before loading: a BERT folder given --dropout would otherwise fail
    # inside transformers (DistilBERT's dropout keywords) with a traceback instead of this message. The
    # folder gets the teacher's preflight (config readable, tensors-only weights) first.
    check_model_folder(spath)
    meta_in = read_student_record(spath)  # read once, before training: a damaged record stops the run at once
    s_type = AutoConfig.from_pretrained(str(spath)).model_type
    if s_type != "distilbert":
        raise UsageError(f"student {spath} is a {s_type!r} model; expected a DistilBERT folder: create one with "
                         "`edgekit distill init --teacher TEACHER --out STUDENT` (a shallower copy of a BERT task "
                         "model trains with `edgekit distill task` instead, after `edgekit distill general` "
                         "for its general distillation)")
    student_cls = AutoModelForMaskedLM if teacher.kind == MLM else AutoModel
    kw = {}
    if cfg.dropout is not None:
        kw = {"dropout": cfg.dropout, "attention_dropout": cfg.dropout}
    student = student_cls.from_pretrained(str(spath), **kw)
    if teacher.kind == MLM and not hasattr(student, "vocab_projector"):
        raise UsageError("the teacher has an MLM head but the student has none; re-create it with distill init")
    tok = load_tokenizer(spath if (spath / "tokenizer.json").is_file() or (spath / "vocab.txt").is_file()
                         else cfg.teacher)

    # Data: tokenised once (main process first, the others then read the same cache).
    with acc.main_process_first():
        cache_path = D.build_cache(tok, cfg.cache_dir, cfg.data or None, cfg.dataset, cfg.max_len, cfg.min_tokens,
                                   cfg.max_texts, show_progress=cfg.progress and acc.is_main_process,
                                   drop_held_out=cfg.drop_held_out)
    cache = D.TokenCache(cache_path)
    vocab = int(student.config.vocab_size)
    mcfg = D.MaskingConfig(mlm_prob=cfg.mlm_prob, smoothing=cfg.mlm_smoothing)
    probs = None
    if teacher.kind == MLM:
        counts = np.zeros(vocab, dtype=np.int64)
        counts[:min(vocab, len(cache.counts))] = cache.counts[:vocab]
        probs = D.token_probs(counts, cfg.mlm_smoothing, tok.all_special_ids)
    global_bs = cfg.batch_size * world
    plan_cache: dict[int, list] = {}

    def plan(epoch: int) -> list:
        if epoch not in plan_cache:
            plan_cache.clear()
            plan_cache[epoch] = D.batch_plan(cache.lengths, global_bs, cfg.seed, epoch, cfg.group_by_length)
        return plan_cache[epoch]

    model = StudentStep(student)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
         "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, eps=cfg.adam_eps, betas=(0.9, 0.98))
    model, optimizer = acc.prepare(model, optimizer)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg.steps, int(cfg.warmup * cfg.steps)))

    out = Path(cfg.out)
    ckdir = out / "checkpoints"
    state = {"step": 0, "epoch": 0, "batch": 0, "tokens_seen": 0, "elapsed": 0.0, "history": [],
             "world_size": world, "config": cfg.to_json()}
    if cfg.resume:
        from edgekit.model.preflight import resume_checkpoint

        # A damaged checkpoint is named file by file; "auto" falls back to the newest good one.
        ck = resume_checkpoint(ckdir, cfg.resume, say=acc.print)
        if ck is not None:
            refuse_recipe_changes(ck, recipe_changes(saved_config(ck), cfg, RESUME_MAY_CHANGE))
            state = load_checkpoint(acc, model, optimizer, scheduler, ck)
            if state.get("world_size") != world and acc.distributed_type.name == "FSDP":
                raise UsageError("an FSDP checkpoint must be resumed with the same number of processes")
            acc.print(f"resumed from {ck} at step {state['step']}")
        elif cfg.resume != "auto":
            raise UsageError(f"checkpoint {cfg.resume} not found")

    kind = teacher.kind
    weights = cfg.weights.resolve(kind)
    if kind != MLM and weights.hid > 0:
        lm = meta_in.get("layer_map")
        if not lm:
            raise UsageError("--alpha-hid needs the student's layer map (a folder from `edgekit distill init`)")
        acc.unwrap_model(model).layer_map = list(lm)
    step, epoch, bidx = state["step"], state["epoch"], state["batch"]
    tokens_seen = state["tokens_seen"]
    history: list[dict] = state["history"]
    model.train()
    bar = progress(cfg.steps, "distilling", unit="steps", initial=step,
                   enabled=cfg.progress and acc.is_main_process)
    t0 = time.perf_counter()
    elapsed0 = state["elapsed"]
    tokens_at_start = tokens_seen

    def next_batch() -> Any:
        nonlocal epoch, bidx
        while bidx >= len(plan(epoch)):
            epoch, bidx = epoch + 1, 0
        gb = plan(epoch)[bidx]
        mine = D.shard(gb, rank, world)
        b = D.collate(cache, mine, epoch, cfg.seed, probs, mcfg, tok.mask_token_id, tok.pad_token_id or 0, vocab)
        bidx += 1
        return b.to(acc.device), mine

    # Encoder-only teachers with pooled-embedding terms only: the teacher's output per sequence is fixed, so it
    # is computed once (first epoch or first run) and read back afterwards; later epochs run the student only.
    tcache = None
    if kind != MLM and cfg.teacher_cache and weights.cos == 0 and weights.hmse == 0 and weights.hid == 0:
        from edgekit.distill.teacher_cache import PooledCache, model_fingerprint

        with acc.main_process_first():
            tcache = PooledCache(cache_path, model_fingerprint(cfg.teacher) + f"/{acc.mixed_precision}",
                                 len(cache), int(teacher.config.hidden_size))
    cache_hits = cache_misses = 0

    def teacher_pooled(batch: Any, indices: Any) -> Any:
        nonlocal cache_hits, cache_misses
        if tcache is None:
            return None
        tp = tcache.lookup(indices)
        if tp is not None:
            cache_hits += 1
            return tp.to(acc.device)
        cache_misses += 1
        from edgekit.distill.losses import mean_pool

        with torch.inference_mode():
            tp = mean_pool(teacher.hidden(batch.clean_ids, batch.attention_mask), batch.attention_mask).float()
        tcache.store(indices, tp)
        return tp.clone()

    stop_at = cfg.steps if cfg.stop_after is None else min(cfg.steps, step + cfg.stop_after)
    from edgekit.core.threads import Follower

    follow = Follower(pinned=cfg.threads)  # without a count of the caller's, the pool follows the free cores
    while step < stop_at:
        sums = {k: 0.0 for k in TERMS}
        step_tokens = 0
        for micro in range(cfg.grad_accum):
            batch, mine = next_batch()
            ctx = acc.no_sync(model) if micro < cfg.grad_accum - 1 else contextlib.nullcontext()
            with ctx, acc.autocast():
                terms = step_terms(model, teacher, batch, weights, kind, t_pooled=teacher_pooled(batch, mine))
                names = sorted(terms)
                local = torch.stack([terms[n][1].to(torch.float64) for n in names]
                                    + [torch.tensor(batch.n_tokens, dtype=torch.float64, device=acc.device)])
                glob = acc.reduce(local.clone(), reduction="sum") if world > 1 else local
                counts = {n: float(glob[i]) for i, n in enumerate(names)}
                # DDP averages gradients over processes, hence x world to get the global-batch gradient.
                loss = combine(terms, weights, counts, scale=world / cfg.grad_accum)
            acc.backward(loss)
            step_tokens += int(glob[-1])
            detached = torch.stack([terms[n][0].detach().to(torch.float64) for n in names])
            detached = acc.reduce(detached, reduction="sum") if world > 1 else detached
            for i, n in enumerate(names):
                sums[n] += float(detached[i]) / max(counts[n], 1.0) / cfg.grad_accum
        if cfg.max_grad_norm > 0:
            acc.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        follow.step()
        tokens_seen += step_tokens
        parts = {n: sums[n] for n in names}
        total = sum(getattr(weights, n) * v for n, v in parts.items())
        run_s = time.perf_counter() - t0
        tps = (tokens_seen - tokens_at_start) / max(run_s, 1e-9)
        rec = {"step": step, "loss": total, **{f"loss_{n}": v for n, v in parts.items()},
               "lr": scheduler.get_last_lr()[0], "tokens_seen": tokens_seen, "tokens_per_s": tps}
        history.append(rec)
        if acc.is_main_process and (step % max(1, cfg.log_every) == 0 or step == cfg.steps):
            bar.set_postfix(loss=f"{total:.4f}", tok_s=f"{tps:,.0f}", refresh=False)
        bar.update(1)
        periodic = cfg.checkpoint_every and step % cfg.checkpoint_every == 0
        if step < cfg.steps and (periodic or step == stop_at):
            st = {"step": step, "epoch": epoch, "batch": bidx, "tokens_seen": tokens_seen,
                  "elapsed": elapsed0 + run_s, "history": history, "world_size": world, "config": cfg.to_json()}
            save_checkpoint(acc, model, optimizer, scheduler, ckdir, step, st, cfg.keep_checkpoints)
    bar.close()
    run_s = time.perf_counter() - t0
    elapsed = elapsed0 + run_s
    tps = (tokens_seen - tokens_at_start) / max(run_s, 1e-9)
    final = history[-1] if history else {}
    if step < cfg.steps:
        acc.print(f"stopped at step {step} of {cfg.steps}; continue with --resume auto")
        return TrainResult(ckdir, step, tokens_seen, tps, history, final)
    acc.wait_for_everyone()
    # Every process takes part in gathering (FSDP shards); only the main one writes.
    full_sd = acc.get_state_dict(model)
    if acc.is_main_process:
        full_sd = {k[len("student."):]: v for k, v in full_sd.items() if k.startswith("student.")}
        meta = {**meta_in, "teacher": cfg.teacher, "teacher_kind": kind, "steps": step, "tokens_seen": tokens_seen,
                "loss_weights": weights.as_dict(), "final": final}
        save_student(acc.unwrap_model(model).student, out, tok, meta, state_dict=full_sd)
        if cfg.card:
            from edgekit.distill.card import write_card

            write_card(out, {"teacher": cfg.teacher, "teacher_kind": kind, "teacher_type": teacher.model_type,
                             "teacher_layers": teacher.num_layers, "layer_map": meta_in.get("layer_map"),
                             "student_layers": int(student.config.n_layers), "loss_weights": weights.as_dict(),
                             "steps": step, "tokens_seen": tokens_seen, "tokens_per_s": tps,
                             "elapsed_s": elapsed, "processes": world,
                             "threads": follow.card(),
                             "global_batch": global_bs * cfg.grad_accum, "max_len": cfg.max_len, "lr": cfg.lr,
                             "corpus": cache.meta, "final": final, "mixed_precision": str(acc.mixed_precision),
                             "teacher_cache": None if tcache is None else {
                                 "file": tcache.emb_path.name, "batches_from_cache": cache_hits,
                                 "batches_computed": cache_misses, "filled": tcache.fraction_filled}},
                       history)
        (out / "train_history.json").write_text(json.dumps(history))
    acc.wait_for_everyone()
    return TrainResult(out, step, tokens_seen, tps, history, final)


# ---------------------------------------------------------------------------------------------- running


def check_data(cfg: TrainConfig) -> None:
    """Training data is named and every text file is readable: checked before any model loads (exit 2)."""
    if not cfg.data and not cfg.dataset:
        raise UsageError("no training data: pass --data FILE... or --dataset NAME")
    from edgekit.distill.corpus import check_text_file

    for f in cfg.data:
        check_text_file(f)


def prepare_student(cfg: TrainConfig, layers: Sequence[int] | None = None, n_layers: int | None = None) -> None:
    """Initialise the student folder from the teacher if it does not exist yet (rank 0 only), copying the
    teacher ``layers`` (default: :func:`edgekit.distill.student.init_student`'s choice for ``n_layers``)."""
    if (Path(cfg.student) / "config.json").is_file():
        return
    if os.environ.get("RANK", "0") not in ("0", ""):
        # Other ranks wait for rank 0 to write it.
        for _ in range(600):
            if (Path(cfg.student) / "config.json").is_file():
                time.sleep(1)
                return
            time.sleep(1)
        raise UsageError(f"student {cfg.student} was not created by rank 0")
    from edgekit.distill.student import init_student

    init_student(cfg.teacher, cfg.student, layers=list(layers) if layers else None, n_layers=n_layers)


def run(cfg: TrainConfig, layers: Sequence[int] | None = None, n_layers: int | None = None) -> TrainResult:
    """Check the data, initialise the student if its folder is not there yet (see :func:`prepare_student`),
    then :func:`train`: ``edgekit distill train`` and ``python -m edgekit.distill.train``."""
    check_data(cfg)
    prepare_student(cfg, layers, n_layers)
    return train(cfg)


if __name__ == "__main__":
    # ``python -m``, ``accelerate launch -m`` and ``torchrun -m edgekit.distill.train``: the flags are the
    # command line's (edgekit.cli.distill); this module only trains.
    from edgekit.cli.distill import train_main

    sys.exit(train_main())
