"""Every user error is a message and exit 2, before any heavy work and never as a traceback (issue 12)."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from edgekit.model import preflight
from edgekit.cli import main
from edgekit.core.errors import UsageError
from edgekit.core.tasks import Task


@pytest.fixture(scope="module")
def model_dir(tiny_model):
    return tiny_model("bert", Task.FEATURE_EXTRACTION)


def _export(model, out, *extra) -> list[str]:
    return ["export", "--model", str(model), "--target", "torchscript", "--seq-len", "16", "--out", str(out), *extra]


def _fails(argv: list[str], message: str, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err
    return err


def test_seq_len_longer_than_positions_is_a_usage_error_up_front(model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    argv = _export(model_dir, out)
    argv[argv.index("16")] = "600"
    _fails(argv, "--seq-len 600 is longer than", capsys)
    assert not out.exists() or not any(out.glob("*.json"))  # no export-failed record


def test_out_under_a_file(model_dir, tmp_path, capsys):
    f = tmp_path / "hostname"
    f.write_text("x")
    _fails(_export(model_dir, f / "x"), "is a file, not a folder", capsys)


def test_out_on_a_read_only_filesystem(model_dir, capsys):
    target = Path("/sys/edgekit-test-out")
    try:
        target.mkdir()
    except OSError:
        pass
    else:
        target.rmdir()
        pytest.skip("/sys is writable here")
    _fails(_export(model_dir, target), "is not writable", capsys)


def test_empty_folder_says_config_is_missing(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    err = _fails(_export(tmp_path / "empty", tmp_path / "out"), "has no config.json", capsys)
    assert "model_type" not in err


def test_config_without_weights(model_dir, tmp_path, capsys):
    d = tmp_path / "m"
    d.mkdir()
    shutil.copy(model_dir / "config.json", d)
    _fails(_export(d, tmp_path / "out"), "no weights: expected model.safetensors", capsys)


def test_truncated_safetensors(model_dir, tmp_path, capsys):
    d = tmp_path / "m"
    shutil.copytree(model_dir, d)
    w = d / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    _fails(_export(d, tmp_path / "out"), "model.safetensors is damaged or incomplete", capsys)


class Payload:
    """Pickles as a call: what a malicious pytorch_model.bin carries."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickle_with_code_payload_is_refused_with_a_message(model_dir, tmp_path, capsys):
    import torch

    d = tmp_path / "m"
    d.mkdir()
    shutil.copy(model_dir / "config.json", d)
    torch.save({"weight": torch.zeros(2), "x": Payload()}, d / "pytorch_model.bin")
    err = _fails(_export(d, tmp_path / "out"), "holds more than tensors", capsys)
    assert "weights_only=True" in err
    assert "this must never run" not in capsys.readouterr().out


def test_hub_id_offline_fails_at_once(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.monotonic()
    _fails(_export("no-such-org/no-such-model", tmp_path / "out"), "HF_HUB_OFFLINE is set", capsys)
    assert time.monotonic() - t0 < 20  # not a retry loop (generous: a shared, loaded machine)


def test_hub_id_unreachable_fails_at_once(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(preflight, "hub_reachable", lambda timeout=0: False)
    _fails(_export("no-such-org/no-such-model", tmp_path / "out"), "Hub is unreachable", capsys)


def test_validate_with_a_junk_record(tmp_path, capsys):
    art = tmp_path / "x.pt"
    art.write_bytes(b"PK")
    (tmp_path / "x.pt.json").write_text('{"artifact": "x.pt"}')
    assert main(["validate", str(art)]) == 2
    err = capsys.readouterr().err
    assert "is not a readable edgekit record" in err and "Traceback" not in err


# ---- distillation checkpoints ------------------------------------------------------------------

def _checkpoint(folder: Path, step: int) -> Path:
    """A structurally complete checkpoint (the files save_checkpoint writes, with small contents)."""
    import torch
    from safetensors.torch import save_file

    ck = folder / f"step-{step:08d}"
    ck.mkdir(parents=True)
    save_file({"w": torch.ones(4)}, str(ck / "student.safetensors"))
    torch.save({"state": {}, "param_groups": []}, ck / "optimizer.pt")
    torch.save({"last_epoch": step}, ck / "scheduler.pt")
    torch.save({"cpu": torch.get_rng_state()}, ck / "rng-0.pt")
    (ck / "state.json").write_text(json.dumps({"step": step}))
    return ck


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


@pytest.mark.parametrize("damage,bad_file", [
    (lambda ck: _truncate(ck / "student.safetensors"), "student.safetensors: damaged"),
    (lambda ck: (ck / "state.json").write_text("{not json"), "state.json: not valid JSON"),
    (lambda ck: (ck / "state.json").write_text("{}"), "state.json: no step number"),
    (lambda ck: (ck / "optimizer.pt").write_bytes(b"junk" * 100), "optimizer.pt: unreadable"),
])
def test_damaged_checkpoint_is_named_and_the_previous_good_one_offered(tmp_path, damage, bad_file):
    good = _checkpoint(tmp_path, 2)
    bad = _checkpoint(tmp_path, 4)
    damage(bad)
    with pytest.raises(UsageError) as e:
        preflight.resume_checkpoint(tmp_path, str(bad))
    assert bad_file in str(e.value) and f"--resume {good}" in str(e.value)
    said: list[str] = []
    assert preflight.resume_checkpoint(tmp_path, "auto", say=said.append) == good
    assert bad_file in said[0]


def test_no_good_checkpoint(tmp_path):
    bad = _checkpoint(tmp_path, 1)
    (bad / "optimizer.pt").unlink()
    with pytest.raises(UsageError, match="optimizer.pt: missing.*no earlier good checkpoint"):
        preflight.resume_checkpoint(tmp_path, str(bad))
    assert preflight.resume_checkpoint(tmp_path, "auto", say=lambda s: None) is None
    with pytest.raises(UsageError, match="not found"):
        preflight.resume_checkpoint(tmp_path, str(tmp_path / "step-00000099"))
