"""Checks up front: a user's mistake becomes one message and exit 2, before any heavy work starts.

Each check reads as little as it can (a JSON file, a safetensors header, a socket connect) and
raises :class:`~edgekit.core.errors.UsageError` or :class:`~edgekit.core.errors.ModelLoadError` whose
message names the file and says what to do. Nothing here imports torch at module level.
"""
from __future__ import annotations

import json
import os
import pickle
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgekit.core.errors import ModelLoadError, UsageError

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
HUB_HOST, HUB_PORT, HUB_TIMEOUT_S = "huggingface.co", 443, 3.0


# ---- model source -----------------------------------------------------------------------------

def looks_local(model: str) -> bool:
    """A path, as opposed to a Hugging Face id (``org/name`` or ``name``)."""
    return (Path(model).exists() or model.startswith((".", "/", "~")) or model.count("/") > 1
            or "\\" in model or model.endswith("/"))


def check_model(model: str | Path) -> None:
    """A local model folder has config.json and readable weights; a hub id is reachable or cached."""
    text = str(model)
    if looks_local(text):
        check_model_folder(Path(text).expanduser())
    else:
        check_hub_id(text)


def check_model_folder(folder: Path) -> None:
    if not folder.exists():
        raise ModelLoadError(f"model folder {folder} does not exist")
    if not folder.is_dir():
        raise ModelLoadError(f"{folder} is a file; --model takes a model folder (config.json + weights)")
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"{folder} has no config.json: it is not a Hugging Face model folder "
                             "(save one with model.save_pretrained(folder))")
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{folder / 'config.json'} is not valid JSON ({e})") from None
    if not isinstance(cfg, dict) or "model_type" not in cfg:
        raise ModelLoadError(f"{folder / 'config.json'} has no model_type: edgekit exports BERT and DistilBERT "
                             "checkpoints saved by transformers")
    # The first present file in WEIGHT_FILES order is the one transformers loads: check that one.
    name = next((f for f in WEIGHT_FILES if (folder / f).is_file()), None)
    if name is None:
        raise ModelLoadError(f"{folder} has config.json but no weights: expected model.safetensors "
                             "(or pytorch_model.bin)")
    path = folder / name
    if name.endswith(".index.json"):
        check_shards(path)
    elif name.endswith(".safetensors"):
        check_safetensors(path)
    else:
        check_torch_weights(path)


def check_shards(index: Path) -> None:
    try:
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ModelLoadError(f"{index} is not a valid weight index ({type(e).__name__})") from None
    for shard in shards:
        path = index.parent / shard
        if not path.is_file():
            raise ModelLoadError(f"{index.name} names {shard}, which is missing from {index.parent}")
        (check_safetensors if shard.endswith(".safetensors") else check_torch_weights)(path)


def check_safetensors(path: Path) -> None:
    """The header parses and the data covers every tensor it lists (a truncated download fails here)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "np"):
            pass
    except Exception as e:  # noqa: BLE001 - SafetensorError and OSError alike: the file is unusable
        raise ModelLoadError(f"{path} is damaged or incomplete ({e}); download or save it again") from None


def check_torch_weights(path: Path) -> None:
    """A pickled checkpoint must load with ``weights_only=True``: tensors only, no code."""
    import torch

    try:
        try:
            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            torch.load(path, map_location="cpu", weights_only=True)  # a legacy (pre-zip) file cannot be mapped
    except pickle.UnpicklingError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        # torch's first line is a general note; the line naming the refused global says what the file holds
        first = next((ln for ln in lines if "GLOBAL" in ln or "global" in ln), lines[0] if lines else type(e).__name__)
        raise ModelLoadError(
            f"{path} holds more than tensors ({first[:200]}); edgekit loads weights with weights_only=True "
            "and refuses it. If you trust its origin, convert it to model.safetensors first") from None
    except (RuntimeError, OSError, EOFError, ValueError) as e:
        raise ModelLoadError(f"{path} is damaged or incomplete ({type(e).__name__}: {str(e)[:200]})") from None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        hit = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # noqa: BLE001 - an id the cache cannot even parse is not cached
        return False
    return isinstance(hit, str)


def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "")
    host, port = HUB_HOST, HUB_PORT
    if endpoint.startswith(("http://", "https://")):
        from urllib.parse import urlparse

        u = urlparse(endpoint)
        host, port = u.hostname or host, u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def check_hub_id(repo_id: str) -> None:
    """A model id that is not a local path: fail at once, not after a minute of retries."""
    if _cached(repo_id):
        return
    if _offline():
        raise UsageError(f"{repo_id!r} is not a local folder, and HF_HUB_OFFLINE is set, and it is not in the "
                         "Hugging Face cache: pass a local model folder (--model PATH)")
    if not hub_reachable():
        raise UsageError(f"{repo_id!r} is not a local folder and the Hugging Face Hub is unreachable: "
                         "pass a local model folder (--model PATH), or download the model first")


# ---- options that depend on the model ---------------------------------------------------------

def max_positions(model: str | Path) -> int | None:
    """``max_position_embeddings`` of a local model folder (None when it cannot be read cheaply)."""
    path = Path(str(model)).expanduser() / "config.json"
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    value = cfg.get("max_position_embeddings") if isinstance(cfg, dict) else None
    return int(value) if isinstance(value, int) else None


def check_seq_len(model: str | Path, lengths: list[int] | tuple[int, ...], limit: int | None = None) -> None:
    """Every sequence length fits the model's position table (``limit``: already known, e.g. from a
    loaded model; else read from the folder's config.json)."""
    limit = max_positions(model) if limit is None else limit
    if limit is not None and lengths and max(lengths) > limit:
        raise UsageError(f"--seq-len {max(lengths)} is longer than {model}'s {limit} position embeddings "
                         f"(max_position_embeddings); use --seq-len {limit} or less")


def check_out(out: Path) -> None:
    """``--out`` is (or can become) a writable folder: not under a file, not read-only."""
    out = Path(out)
    for parent in [out, *out.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"--out {out}: {parent} is a file, not a folder; choose another --out")
            break
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".edgekit-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"--out {out} is not writable ({e.strerror or e}); choose another --out") from None


# ---- distillation checkpoints -----------------------------------------------------------------

def checkpoint_problems(path: Path) -> list[str]:
    """Which files of a distillation checkpoint (``OUT/checkpoints/step-N``) are missing or unreadable."""
    import torch

    out = []
    state = path / "state.json"
    try:
        data = json.loads(state.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("step"), int):
            out.append(f"{state.name}: no step number")
    except FileNotFoundError:
        out.append(f"{state.name}: missing")
    except (OSError, ValueError) as e:
        out.append(f"{state.name}: not valid JSON ({str(e)[:80]})")
    if (path / "fsdp").is_dir():
        return out  # Accelerate's sharded layout: it checks its own files when loading
    student = path / "student.safetensors"
    if not student.is_file():
        out.append(f"{student.name}: missing")
    else:
        try:
            check_safetensors(student)
        except ModelLoadError:
            out.append(f"{student.name}: damaged or incomplete")
    rngs = sorted(path.glob("rng-*.pt"))
    for name in ["optimizer.pt", "scheduler.pt", *(p.name for p in rngs)]:
        f = path / name
        if not f.is_file():
            out.append(f"{name}: missing")
            continue
        try:
            torch.load(f, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - whatever torch says, the file cannot be resumed from
            out.append(f"{name}: unreadable ({type(e).__name__})")
    if not rngs:
        out.append("rng-0.pt: missing")
    return out


def resume_checkpoint(ckdir: Path, resume: str, say: Callable[[str], Any] = print) -> Path | None:
    """The checkpoint ``--resume`` should continue from, after checking it is whole.

    ``auto``: the newest good checkpoint under ``ckdir`` (a damaged newer one is named and skipped).
    A folder: that checkpoint, or a UsageError naming its bad file and the previous good one.
    """
    cands = sorted((p for p in Path(ckdir).glob("step-*") if p.is_dir()), reverse=True)
    if resume == "auto":
        for ck in cands:
            bad = checkpoint_problems(ck)
            if not bad:
                return ck
            say(f"skipping damaged checkpoint {ck} ({'; '.join(bad)}); trying the previous one")
        return None
    ck = Path(resume)
    if not ck.is_dir():
        raise UsageError(f"checkpoint {resume} not found")
    bad = checkpoint_problems(ck)
    if not bad:
        return ck
    good = next((p for p in sorted((p for p in ck.parent.glob("step-*") if p.is_dir()), reverse=True)
                 if p.name < ck.name and not checkpoint_problems(p)), None)
    offer = (f"; the previous good checkpoint is {good}: resume with --resume {good} (or --resume auto)"
             if good else "; there is no earlier good checkpoint to resume from")
    raise UsageError(f"checkpoint {ck} is damaged: {'; '.join(bad)}{offer}")
