"""Fault-safe installs: an output folder holds the old pair or the new pair, never a mix (issue 12)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgekit.build import install
from edgekit.core.config import ExportOptions, SeqLen
from edgekit.core.tolerance import Tolerance
from edgekit.build.stage import export_model
from edgekit.check.integrity import problems, sha256_of
from edgekit.model.modeling import load_model
from edgekit.core.precision import Precision
from edgekit.core.record import ArtifactRecord, Status
from edgekit.core.tasks import Task

NAME = "tiny.feature-extraction.fp32.s16.pt"


@pytest.fixture(scope="module")
def two_models(tmp_path_factory, tiny_model):
    """Two different checkpoints whose folders share a name, so their exports share an artifact name."""
    import shutil

    root = tmp_path_factory.mktemp("models")
    a = shutil.copytree(tiny_model("bert", Task.FEATURE_EXTRACTION), root / "a" / "tiny")
    b = shutil.copytree(tiny_model("bert", Task.FEATURE_EXTRACTION, seed=1, hidden=64), root / "b" / "tiny")
    return a, b


def _opts() -> ExportOptions:
    return ExportOptions(target="torchscript", task=Task.FEATURE_EXTRACTION, precision=Precision.FP32,
                         seq_len=SeqLen.parse("16"))


def _pair(out: Path) -> tuple[ArtifactRecord, str]:
    """The installed record and its file's hash; asserts they are one consistent pair."""
    rec = ArtifactRecord.load(out / NAME)
    assert problems(out / NAME, rec) == []
    return rec, sha256_of(out / NAME)


def _visible(out: Path) -> list[str]:
    """The artifact files and records in ``out`` (not the run's log and reports)."""
    return sorted(p.name for p in out.iterdir() if not p.name.startswith(".")
                  and p.name != "edgekit.log" and not p.name.startswith("report."))


def _leftovers(out: Path) -> list[str]:
    sd = install.state_dir(out)
    return sorted(p.name for p in sd.iterdir() if not p.name.endswith(install.LOCK_SUFFIX)) if sd.is_dir() else []


def test_failed_reexport_keeps_previous_validated_pair(two_models, tmp_path, monkeypatch):
    a, b = two_models
    out = tmp_path / "out"
    first = export_model(load_model(a, Task.FEATURE_EXTRACTION), _opts(), out, verbose=False)
    assert first.status == Status.VALIDATED
    before = _pair(out)
    model_b = load_model(b, Task.FEATURE_EXTRACTION)
    # parity fails (an impossible tolerance): the validated pair stays
    bad = export_model(model_b, _opts(), out, tolerance=Tolerance(max_abs=-1.0), verbose=False)
    assert bad.status == Status.PARITY_FAILED
    assert _pair(out)[1] == before[1] and _visible(out) == [NAME, NAME + ".json"]
    # the converter crashes: the validated pair stays
    from edgekit.core import registry

    conv = registry.get("torchscript")
    monkeypatch.setattr(type(conv), "convert", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    crashed = export_model(model_b, _opts(), out, verbose=False)
    assert crashed.status == Status.EXPORT_FAILED
    assert _pair(out)[1] == before[1] and _leftovers(out) == []
    assert not install.state_dir(out).exists()  # a clean folder holds only pairs


def test_export_failed_replaces_an_unvalidated_pair_without_leaving_its_file(two_models, tmp_path, monkeypatch):
    a, _ = two_models
    out = tmp_path / "out"
    model = load_model(a, Task.FEATURE_EXTRACTION)
    export_model(model, _opts(), out, validate=False, verbose=False)
    from edgekit.core import registry

    monkeypatch.setattr(type(registry.get("torchscript")), "convert",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    export_model(model, _opts(), out, verbose=False)
    assert _visible(out) == [NAME + ".json"]
    assert ArtifactRecord.load(out / NAME).status == Status.EXPORT_FAILED


def test_error_inside_staging_leaves_old_pair_and_no_temp_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.pt").write_text("old")
    (out / "x.pt.json").write_text("{}")
    with pytest.raises(KeyboardInterrupt):
        with install.Staging(out, "x.pt") as st:
            st.artifact.write_text("new")
            import tempfile

            assert Path(tempfile.gettempdir()).is_relative_to(install.state_dir(out))
            raise KeyboardInterrupt
    assert (out / "x.pt").read_text() == "old" and _leftovers(out) == []


def test_next_run_rolls_forward_a_committed_install_and_drops_dead_staging(tmp_path):
    """What a SIGKILL leaves: a journal-committed install half done, and an uncommitted staging folder."""
    out = tmp_path / "out"
    sd = install.state_dir(out)
    committed = sd / f"a.pt.999999{install.STAGING_SUFFIX}"
    committed.mkdir(parents=True)
    (committed / "a.pt.json").write_text("new record")
    (out / "a.pt").write_text("new file")  # moved before the kill
    (out / "a.pt.json").write_text("old record")
    (sd / "a.pt.install").write_text(committed.name + "\n")
    dead = sd / f"b.pt.999998{install.STAGING_SUFFIX}"
    dead.mkdir()
    (dead / "b.pt").write_text("half a file")
    install.recover(out)
    assert (out / "a.pt.json").read_text() == "new record"
    assert _leftovers(out) == [] and _visible(out) == ["a.pt", "a.pt.json"]


def test_a_live_export_is_not_cleaned_by_another_reader(tmp_path):
    out = tmp_path / "out"
    with install.Staging(out, "x.pt") as st:
        st.artifact.write_text("in progress")
        install.recover(out)  # another command in the folder
        assert st.artifact.exists()


def test_unwritable_out_is_a_usage_error(tmp_path):
    from edgekit.core.errors import UsageError

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):
        pytest.skip("running as a user who can write anywhere")
    with pytest.raises(UsageError, match="cannot write"):
        with install.Staging(ro, "x.pt"):
            pass


# ---- real processes, real signals --------------------------------------------------------------

def _export_cmd(model: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "edgekit", "export", "--model", str(model), "--target", "torchscript",
            "--seq-len", "16", "--out", str(out)]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "TMPDIR": str(tmp), "HF_HUB_OFFLINE": "1", **extra}
    return env


def _default_sigint() -> None:
    # A background job of a non-interactive shell starts with SIGINT ignored, and a child inherits
    # that; give the export the disposition a terminal user's Ctrl-C meets.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_paused(model: Path, out: Path, point: str, tmp: Path, release: Path | None = None) -> subprocess.Popen:
    marker = tmp.parent / f"paused-{point}"
    marker.unlink(missing_ok=True)
    hooks = {install.PAUSE_AT_ENV: point, install.PAUSE_FILE_ENV: str(marker), "EDGEKIT_TEST_PAUSE_SECONDS": "240"}
    if release:
        hooks[install.RELEASE_FILE_ENV] = str(release)
    proc = subprocess.Popen(_export_cmd(model, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=_env(tmp, **hooks), preexec_fn=_default_sigint)
    deadline = time.time() + 120
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"export ended before {point}: {proc.stderr.read().decode()[-2000:]}")
        assert time.time() < deadline, f"export never reached {point}"
        time.sleep(0.1)
    return proc


@pytest.mark.slow
def test_sigint_and_sigkill_at_each_point_leave_old_or_new_pair(two_models, tmp_path):
    a, b = two_models
    out, tmp = tmp_path / "out", tmp_path / "systmp"
    tmp.mkdir()
    export_model(load_model(a, Task.FEATURE_EXTRACTION), _opts(), out, verbose=False)
    old_rec, old_sha = _pair(out)
    assert old_rec.status == Status.VALIDATED
    for sig, point in [(signal.SIGINT, "convert"), (signal.SIGINT, "validate"), (signal.SIGINT, "install"),
                       (signal.SIGKILL, "convert"), (signal.SIGKILL, "validate"), (signal.SIGKILL, "install")]:
        proc = _start_paused(b, out, point, tmp)
        proc.send_signal(sig)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        proc.stderr.close()
        # before any other command runs: the old pair, exactly
        assert _visible(out) == [NAME, NAME + ".json"], (sig, point)
        assert _pair(out)[1] == old_sha, (sig, point)
        if sig == signal.SIGINT:
            assert proc.returncode == 130 and _leftovers(out) == [], (point, _leftovers(out))
        install.recover(out)  # what the next edgekit command in the folder does first
        assert _leftovers(out) == [] and _pair(out)[1] == old_sha
        assert list(tmp.iterdir()) == [], f"temp files left in the system temp folder: {list(tmp.iterdir())}"
    # killed in the middle of the renames (after the commit point): the next command completes the new pair
    proc = _start_paused(b, out, "commit", tmp)
    proc.kill()
    proc.wait(timeout=60)
    proc.stderr.close()
    assert ArtifactRecord.load(out / NAME).sha256 == old_sha != sha256_of(out / NAME)  # mid-commit
    from edgekit.cli import main

    assert main(["report", str(out)]) == 0  # any edgekit command in the folder completes the install
    new_rec, new_sha = _pair(out)
    assert new_sha != old_sha and new_rec.source.source == str(b) and _leftovers(out) == []


@pytest.mark.slow
def test_staggered_concurrent_exports_of_one_name_end_with_a_consistent_pair(two_models, tmp_path):
    a, b = two_models
    out, tmp = tmp_path / "out", tmp_path / "systmp"
    tmp.mkdir()
    # the first export is held in validation until the second has started and is waiting for it
    release = tmp_path / "release"
    first = _start_paused(a, out, "validate", tmp, release=release)
    second = subprocess.Popen(_export_cmd(b, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env=_env(tmp), text=True)
    waited = []
    for line in second.stderr:
        waited.append(line)
        if "waiting for another export" in line:
            break
    release.touch()
    first_err = first.communicate(timeout=300)[1].decode()
    second_err = "".join(waited) + second.communicate(timeout=300)[1]
    assert first.returncode == 0 and second.returncode == 0, first_err[-1500:] + second_err[-1500:]
    assert "waiting for another export" in second_err
    rec, _ = _pair(out)
    assert rec.source.source == str(b)  # the later export won, and its record describes its file
    assert _leftovers(out) == []
    assert json.loads((out / (NAME + ".json")).read_text())["status"] == "validated"


# ---- issue 24: locks, interrupts and durability ------------------------------------------------

def test_a_lock_whose_pid_cannot_be_written_is_given_back_and_leaves_no_file(tmp_path, monkeypatch):
    """Defect 9: on a full disk the pid write fails after the flock; the lock file must not stay."""
    import errno

    out = tmp_path / "out"
    real_write = os.write

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(install.os, "write", full)
    from edgekit.core.errors import UsageError

    with pytest.raises(UsageError, match="No space left"):
        with install.Staging(out, "x.pt"):
            pass
    monkeypatch.setattr(install.os, "write", real_write)
    assert not install.state_dir(out).exists(), list(install.state_dir(out).iterdir())


def test_recover_removes_a_lock_file_no_process_holds(tmp_path):
    """Defect 9: a lock file left by a dead process (or an old edgekit) is cleaned by the next reader;
    a lock a live process holds is left alone."""
    out = tmp_path / "out"
    sd = install.state_dir(out)
    sd.mkdir(parents=True)
    (sd / ("dead.pt" + install.LOCK_SUFFIX)).write_text("999999\n")
    with install.Staging(out, "live.pt"):
        install.recover(out)
        assert sorted(p.name for p in sd.iterdir()) == [f"live.pt.{os.getpid()}{install.STAGING_SUFFIX}",
                                                        "live.pt" + install.LOCK_SUFFIX]
    assert not sd.exists()


def _swallowing_converter(monkeypatch, conv_name: str = "torchscript"):
    """A converter whose library swallows Ctrl-C ("Exception ignored in a GC callback") and finishes."""
    from edgekit.core import registry

    conv = type(registry.get(conv_name))
    real = conv.convert

    def convert(self, ctx, path):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)  # the handler runs here
        except KeyboardInterrupt:
            pass  # what the library's callback does with it
        return real(self, ctx, path)

    monkeypatch.setattr(conv, "convert", convert)


def test_ctrl_c_a_library_swallowed_during_convert_installs_nothing(two_models, tmp_path, monkeypatch):
    """Defect 6: the export stops with KeyboardInterrupt and the previous pair stays."""
    a, b = two_models
    out = tmp_path / "out"
    export_model(load_model(a, Task.FEATURE_EXTRACTION), _opts(), out, verbose=False)
    _, old_sha = _pair(out)
    _swallowing_converter(monkeypatch)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        export_model(load_model(b, Task.FEATURE_EXTRACTION), _opts(), out, verbose=False)
    assert _pair(out)[1] == old_sha and _leftovers(out) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is given back


def test_ctrl_c_swallowed_during_convert_exits_130_through_the_cli(two_models, tmp_path, monkeypatch, capsys):
    from edgekit.cli import main

    a, _ = two_models
    out = tmp_path / "out"
    _swallowing_converter(monkeypatch)
    assert main(["export", "--model", str(a), "--target", "torchscript", "--seq-len", "16", "--out", str(out)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not (out / NAME).exists() and not (out / (NAME + ".json")).exists()


def test_install_is_durable_before_and_after_its_commit_point(two_models, tmp_path, monkeypatch):
    """Durability: staged file, record, staging folder and journal are fsynced before the commit
    point; the output folder after the renames and before the journal goes."""
    a, _ = two_models
    out = tmp_path / "out"
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        path = os.readlink(f"/proc/self/fd/{fd}")
        journal = install.state_dir(out) / (NAME + install.JOURNAL_SUFFIX)
        events.append(f"fsync {Path(path).name}{' (journal present)' if journal.exists() else ''}")
        return real_fsync(fd)

    def replace(src, dst):
        events.append(f"replace {Path(dst).name}")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    export_model(load_model(a, Task.FEATURE_EXTRACTION), _opts(), out, verbose=False)
    journal = NAME + install.JOURNAL_SUFFIX
    commit = events.index(f"replace {journal}")
    before, after = events[:commit], events[commit + 1:]
    staging = f"{NAME}.{os.getpid()}{install.STAGING_SUFFIX}"
    assert f"fsync {NAME}" in before and f"fsync {NAME}.json" in before and f"fsync {staging}" in before
    assert f"fsync {journal}.tmp" in before
    assert after[0] == f"fsync {install.STATE_DIR} (journal present)"  # the commit point reaches the disk
    renamed = max(after.index(f"replace {NAME}"), after.index(f"replace {NAME}.json"))
    assert f"fsync {out.name} (journal present)" in after[renamed:]  # the renames, before the journal goes
    assert _pair(out)[0].status == Status.VALIDATED


@pytest.mark.slow
def test_sigint_at_the_commit_point_finishes_the_install_and_says_so(two_models, tmp_path):
    """Defect 11a: Ctrl-C after the commit point: the new pair is installed whole, exit 130, and the
    message says it was installed (not a bare "interrupted")."""
    a, b = two_models
    out, tmp = tmp_path / "out", tmp_path / "systmp"
    tmp.mkdir()
    export_model(load_model(a, Task.FEATURE_EXTRACTION), _opts(), out, verbose=False)
    _, old_sha = _pair(out)
    release = tmp_path / "release"
    proc = _start_paused(b, out, "commit", tmp, release=release)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    release.touch()
    err = proc.communicate(timeout=120)[1].decode()
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted after the new pair" in err and NAME in err and "Traceback" not in err
    rec, sha = _pair(out)
    assert sha != old_sha and rec.source.source == str(b) and _leftovers(out) == []


@pytest.mark.slow
def test_validate_waits_for_an_install_of_the_same_name(two_models, tmp_path):
    """Defect 2: validate holds the install lock: started while a re-export of the same name is about
    to install, it waits, then checks the pair that export installed (never an old record bound to
    the new file)."""
    a, b = two_models
    out, tmp = tmp_path / "out", tmp_path / "systmp"
    tmp.mkdir()
    export_model(load_model(a, Task.FEATURE_EXTRACTION), _opts(), out, verbose=False)
    release = tmp_path / "release"
    exporter = _start_paused(b, out, "install", tmp, release=release)
    validator = subprocess.Popen([sys.executable, "-m", "edgekit", "validate", str(out / NAME)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(tmp), text=True)
    said = []
    for line in validator.stderr:  # it waits for the export rather than reading the old pair
        said.append(line)
        if "waiting for an export" in line:
            break
    assert said and "waiting for an export" in said[-1], "".join(said)
    time.sleep(1)
    assert validator.poll() is None, "validate finished while an install of its name was pending"
    release.touch()
    assert exporter.wait(timeout=300) == 0
    rest = validator.communicate(timeout=300)[1]
    assert validator.returncode == 0, "".join(said) + rest
    rec, _ = _pair(out)
    assert rec.source.source == str(b) and rec.status == Status.VALIDATED


def test_a_reader_without_the_lock_rereads_a_pair_met_between_its_renames(tmp_path):
    """report/bundle read without NAME's lock: a pair met mid-install (new file, old record) is read
    again once that install ends; a mismatch nothing is installing stands after one read."""
    import threading

    out = tmp_path / "out"
    out.mkdir()
    art, rec = out / "x.pt", out / "x.pt.json"
    art.write_text("new")
    rec.write_text("old")  # the moment between the two renames
    lock = install._Lock(install.state_dir(out) / ("x.pt" + install.LOCK_SUFFIX))
    assert lock.acquire(wait=False)
    journal = install.state_dir(out) / ("x.pt" + install.JOURNAL_SUFFIX)
    journal.write_text("x.pt.1.staging\n")

    def finish():
        time.sleep(0.3)
        rec.write_text("new")
        journal.unlink()
        lock.release()

    reads = []

    def read():
        reads.append(1)
        return art.read_text(), rec.read_text()

    threading.Thread(target=finish).start()
    assert install.read_settled(art, read, lambda got: got[0] != got[1]) == ("new", "new")
    assert len(reads) == 2
    art.write_text("changed by hand")  # a real mismatch: reported after one read, no waiting
    reads.clear()
    assert install.read_settled(art, read, lambda got: got[0] != got[1]) == ("changed by hand", "new")
    assert len(reads) == 1
