"""Fault-safe installs: an artifact and its record reach the output folder together or not at all.

The protocol (DESIGN.md, "Install protocol") in one paragraph: an export takes a lock per artifact
name (``fcntl.flock`` on ``OUT/.edgekit/NAME.lock``), builds the artifact *and* its record in a
private staging folder inside the output folder (``OUT/.edgekit/NAME.PID.staging/``; converters'
own temp files go there too, never to the system temp folder), and installs the pair with renames
at the end. Before the first rename it writes a journal (``OUT/.edgekit/NAME.install``) naming the
staging folder: that write is the commit point. A run killed before it leaves the old pair
untouched plus a dead staging folder; a run killed after it is rolled forward by the next edgekit
command that looks at the folder. SIGINT/SIGTERM are held back during the renames. Every edgekit
reader (validate, report, bench, export) calls :func:`recover` first, so what it sees is always a
whole pair: the previous one or the new one. Durability: the staged files, the staging folder and
the journal are fsynced before the commit point, and the output folder after the renames, so a
power loss too leaves the old pair or the new pair (:func:`fsync_tree`, ``EDGEKIT_NO_FSYNC=1``
turns it off, for measuring its cost only).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, TypeVar

from edgekit.core.errors import InterruptedAfterInstall, UsageError
from edgekit.core.record import fsync_enabled

STATE_DIR = ".edgekit"
STAGING_SUFFIX = ".staging"
JOURNAL_SUFFIX = ".install"
LOCK_SUFFIX = ".lock"
OLD_SUFFIX = ".old"

# Test-only fault injection: ``EDGEKIT_TEST_PAUSE_AT=<point>`` makes the export write
# ``EDGEKIT_TEST_PAUSE_FILE`` and sleep at that point (until ``EDGEKIT_TEST_RELEASE_FILE`` exists),
# so a test can signal it there deterministically.
PAUSE_AT_ENV, PAUSE_FILE_ENV = "EDGEKIT_TEST_PAUSE_AT", "EDGEKIT_TEST_PAUSE_FILE"
RELEASE_FILE_ENV = "EDGEKIT_TEST_RELEASE_FILE"
PAUSE_POINTS = ("convert", "validate", "install", "commit")


def test_pause(point: str) -> None:
    """Pause here when a test asked for it (no effect otherwise)."""
    if os.environ.get(PAUSE_AT_ENV) != point:
        return
    marker = os.environ.get(PAUSE_FILE_ENV)
    if marker:
        Path(marker).write_text(f"{os.getpid()} {point}\n")
    # Sleep until the test creates the release file (or the time runs out).
    release = os.environ.get(RELEASE_FILE_ENV)
    deadline = time.monotonic() + float(os.environ.get("EDGEKIT_TEST_PAUSE_SECONDS", "60"))
    while time.monotonic() < deadline and not (release and Path(release).exists()):
        time.sleep(0.05)


def state_dir(out_dir: Path) -> Path:
    return Path(out_dir) / STATE_DIR


def _sidecar(name: str) -> str:
    return name + ".json"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def fsync_path(path: Path) -> None:
    """Flush one file's or one folder's own bytes and entries to the disk."""
    if not fsync_enabled():
        return
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """fsync a file, or a folder (an ``.mlpackage``) with every file and folder inside it."""
    if path.is_dir() and not path.is_symlink():
        for root, _dirs, files in os.walk(path):
            for f in files:
                fsync_path(Path(root) / f)
            fsync_path(Path(root))
    elif path.exists():
        fsync_path(path)


def _replace(src: Path, dst: Path, trash: Path) -> None:
    """Rename ``src`` onto ``dst``. A folder (``.mlpackage``) cannot replace a folder in one rename:
    the old one is first moved to ``trash`` (inside the state folder) and deleted afterwards."""
    if dst.is_dir() and not dst.is_symlink():
        _remove(trash)
        dst.rename(trash)
    elif src.is_dir() and dst.exists():
        dst.unlink()
    os.replace(src, dst)
    _remove(trash)


class InterruptNoted:
    """Ctrl-C during convert and validate must stop the export, even when a library swallows it.

    A KeyboardInterrupt raised inside a library's callback (a garbage-collection hook, a C++
    destructor) is printed as "Exception ignored" and lost: the conversion finishes as if nothing
    happened. This handler notes every SIGINT (and raises KeyboardInterrupt, as Python's own does);
    :meth:`check` raises it again once the library has returned, so the staged pair is not installed.
    Only Python's default SIGINT handler is replaced (an ignored SIGINT stays ignored).
    """

    def __init__(self) -> None:
        self.caught = False
        self._old: Any = None

    def _note(self, signum: int, frame: Any) -> None:
        self.caught = True
        raise KeyboardInterrupt

    def __enter__(self) -> InterruptNoted:
        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._old = signal.signal(signal.SIGINT, self._note)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None

    def check(self) -> None:
        """Raise KeyboardInterrupt if a SIGINT arrived (whether or not something swallowed it)."""
        if self.caught:
            raise KeyboardInterrupt


def _write_durable(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        if fsync_enabled():
            os.fsync(f.fileno())


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back for the few renames of an install; deliver them afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    old = {s: signal.signal(s, lambda n, _f: caught.append(n)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        for s in caught:
            os.kill(os.getpid(), s)


class _Lock:
    """An exclusive ``flock`` on ``OUT/.edgekit/NAME.lock`` (released by the kernel if the process dies).

    The holder deletes the lock file (and the state folder, once empty) when it releases, so a clean
    output folder has no ``.edgekit`` at all. A waiter that wakes on a deleted file retries on the
    new one: holding the lock means holding it on the file the path names now.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self, wait: bool = True, on_wait: Any = None) -> bool:
        said = False
        while True:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:  # the state folder was removed in between: make it again
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES) or not wait:
                    os.close(fd)
                    return False
                if on_wait and not said:
                    on_wait(self._holder())
                    said = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                try:
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}\n".encode())
                except BaseException:
                    # A full disk (or a signal) while writing our pid: give the lock back and leave no
                    # lock file behind (recover would otherwise find a lock nobody holds).
                    self.release()
                    raise
                return True
            os.close(fd)  # the previous holder deleted this file on release: lock the current one

    def _holder(self) -> str:
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()  # only succeeds once nothing else is in the state folder


def _roll_forward(out_dir: Path, name: str) -> None:
    """Finish an install whose journal was written (call with NAME's lock held)."""
    sd = state_dir(out_dir)
    journal = sd / (name + JOURNAL_SUFFIX)
    if not journal.exists():
        return
    staging = sd / journal.read_text().strip()
    for item in (name, _sidecar(name)):
        src = staging / item
        if src.exists():
            _replace(src, out_dir / item, sd / f"{item}.{os.getpid()}{OLD_SUFFIX}")
    if (staging / ".export-failed").exists():  # the new record says no file: drop the old one
        _remove(out_dir / name)
    fsync_path(out_dir)  # the renames reach the disk before the journal that would redo them goes
    journal.unlink()
    _remove(staging)


def _owner_of(entry: str) -> str | None:
    """The artifact name a state-folder entry belongs to (``NAME.PID.staging``, ``NAME.install``)."""
    if entry.endswith(STAGING_SUFFIX):
        stem = entry[: -len(STAGING_SUFFIX)]
        return stem.rsplit(".", 1)[0] if "." in stem else None
    if entry.endswith(JOURNAL_SUFFIX):
        return entry[: -len(JOURNAL_SUFFIX)]
    if entry.endswith(JOURNAL_SUFFIX + ".tmp"):  # a journal being written when the run died
        return entry[: -len(JOURNAL_SUFFIX + ".tmp")]
    if entry.endswith(OLD_SUFFIX):  # NAME.PID.old (a replaced .mlpackage awaiting deletion)
        stem = entry[: -len(OLD_SUFFIX)]
        return stem.rsplit(".", 1)[0] if "." in stem else None
    return None


def recover(out_dir: Path, names: set[str] | None = None, held: str | None = None) -> None:
    """Roll forward committed installs and delete what killed runs left, for every name not in use.

    A name another live process holds the lock of is left alone; ``held`` is a name whose lock
    the caller already holds. Safe to call from any reader: it never touches a live run's files.
    """
    sd = state_dir(out_dir)
    if not sd.is_dir():
        return
    entries = os.listdir(sd)
    owners = {o for e in entries if (o := _owner_of(e))}
    # A lock file no live process holds (its writer died, or could not write its pid on a full disk)
    # is taken and released like any other: release deletes it, and the state folder once empty.
    owners |= {e[: -len(LOCK_SUFFIX)] for e in entries if e.endswith(LOCK_SUFFIX)}
    for name in sorted(owners if names is None else owners & names):
        lock = None
        if name != held:
            lock = _Lock(sd / (name + LOCK_SUFFIX))
            try:
                if not lock.acquire(wait=False):
                    continue  # a live export of this name: its files are its own
            except OSError:
                continue  # a read-only folder: nothing we may clean
        try:
            _roll_forward(out_dir, name)
            for e in os.listdir(sd):
                if _owner_of(e) == name and not e.endswith(JOURNAL_SUFFIX):
                    _remove(sd / e)
        finally:
            if lock:
                lock.release()


def _identity(path: Path) -> tuple[Any, ...]:
    """Which file and which record the path names now (a rename gives a new inode)."""
    out: list[Any] = []
    for p in (path, path.with_name(path.name + ".json")):
        try:
            st = p.stat()
            out.append((st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


T = TypeVar("T")


def _held(out_dir: Path, name: str) -> bool:
    """Whether a live process holds NAME's lock (asked read-only: works in a read-only folder too)."""
    try:
        fd = os.open(state_dir(out_dir) / (name + LOCK_SUFFIX), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        return e.errno in (errno.EAGAIN, errno.EACCES)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def read_settled(path: Path, read: Callable[[], T], bad: Callable[[T], bool], tries: int = 3,
                 timeout: float = 60.0) -> T:
    """``read()`` a file and its record without taking NAME's lock; read again while the result looks
    mixed because an install was replacing the pair meanwhile.

    A reader that does not hold the lock (report, bundle) can meet an install between its two
    renames: the new file beside the previous record. When ``bad(result)``, wait for any committed
    install of NAME to end (rolling forward a dead one, like every reader) and read again, unless
    neither the file nor the record changed since the read: then the finding is real and stands.
    """
    path = Path(path)
    journal = state_dir(path.parent) / (path.name + JOURNAL_SUFFIX)
    before = _identity(path)
    out = read()
    for _ in range(tries - 1):
        if not bad(out):
            break
        deadline = time.monotonic() + timeout
        if journal.exists():
            recover(path.parent, {path.name})  # a dead installer's journal: finish it (when the folder allows)
        while journal.exists() and _held(path.parent, path.name) and time.monotonic() < deadline:
            time.sleep(0.05)  # a live install between its renames: they take milliseconds
        now = _identity(path)
        if now == before:
            break
        before = now
        out = read()
    return out


@contextlib.contextmanager
def locked(out_dir: Path, name: str, quiet: bool = False) -> Iterator[None]:
    """Hold NAME's install lock (the one ``Staging`` takes), with committed installs rolled forward.

    ``validate`` holds it while it reads, re-checks and rewrites a record, so that no install of the
    same name can slip a new file under an old record in between."""
    out_dir = Path(out_dir)
    sd = state_dir(out_dir)
    lock = _Lock(sd / (name + LOCK_SUFFIX))
    try:
        got = lock.acquire(wait=True, on_wait=None if quiet else (
            lambda holder: print(f"edgekit: waiting for an export of {name} into {out_dir} (pid {holder}) "
                                 "to finish", file=sys.stderr)))
    except OSError as e:
        raise UsageError(f"cannot lock {name} in {out_dir} ({e.strerror or e}): its record is rewritten there, so "
                         "the folder must be writable (or copy the file and its .json elsewhere)") from None
    if not got:
        raise UsageError(f"cannot lock {name} in {out_dir}")
    try:
        recover(out_dir, held=name)
        yield
    finally:
        lock.release()


class Staging:
    """Build one artifact and its record privately, then install them together.

    Use as a context manager around the whole export of one artifact name::

        with Staging(out_dir, name) as st:
            convert(st.artifact)          # converters' temp files land in st.tmp
            record.save(st.artifact)      # the record is built beside the artifact
            st.commit()                   # the pair appears in out_dir together

    Leaving the block without :meth:`commit` (an error, Ctrl-C) leaves the previous pair as it was.
    """

    def __init__(self, out_dir: Path, name: str, quiet: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self.name = name
        self.quiet = quiet
        self.lock: _Lock | None = None
        self.dir: Path | None = None
        self._tempdir: Any = None
        self._tmpenv: str | None = None

    @property
    def artifact(self) -> Path:
        assert self.dir is not None
        return self.dir / self.name

    @property
    def final(self) -> Path:
        return self.out_dir / self.name

    def __enter__(self) -> Staging:
        sd = state_dir(self.out_dir)
        try:
            sd.mkdir(parents=True, exist_ok=True)
            self.lock = _Lock(sd / (self.name + LOCK_SUFFIX))
            self.lock.acquire(wait=True, on_wait=self._say_waiting)
        except OSError as e:
            raise UsageError(f"cannot write into {self.out_dir}: {e.strerror or e}; choose another --out") from None
        try:
            recover(self.out_dir, held=self.name)
            self.dir = sd / f"{self.name}.{os.getpid()}{STAGING_SUFFIX}"
            _remove(self.dir)
            (self.dir / "tmp").mkdir(parents=True)
        except BaseException:
            self.lock.release()
            raise
        # Converters and their libraries write scratch files through tempfile / $TMPDIR: keep them
        # in the staging folder so a killed run leaves nothing in the system temp folder.
        self._tempdir, tempfile.tempdir = tempfile.tempdir, str(self.dir / "tmp")
        self._tmpenv = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = str(self.dir / "tmp")
        return self

    def _say_waiting(self, holder: str) -> None:
        if not self.quiet:
            print(f"edgekit: waiting for another export of {self.name} into {self.out_dir} (pid {holder}) "
                  "to finish", file=sys.stderr)

    def commit(self) -> None:
        """Install the staged pair. An artifact missing from staging means an export-failed record:
        any older artifact of that name is then removed with the same commit."""
        assert self.dir is not None
        if not (self.dir / _sidecar(self.name)).exists():
            raise RuntimeError(f"no record staged for {self.name}")
        _remove(self.dir / "tmp")
        if not self.artifact.exists():
            (self.dir / ".export-failed").touch()
        # Durable before the commit point: the staged file (every file of a package), its record and
        # the staging folder's entries; the journal and the state folder next.
        fsync_tree(self.dir)
        test_pause("install")
        sd = state_dir(self.out_dir)
        installed = False
        try:
            with _signals_held():
                journal = sd / (self.name + JOURNAL_SUFFIX)
                tmp = sd / (self.name + JOURNAL_SUFFIX + ".tmp")
                _write_durable(tmp, self.dir.name + "\n")
                os.replace(tmp, journal)  # the commit point
                fsync_path(sd)
                if self.artifact.exists():
                    _replace(self.artifact, self.final, sd / f"{self.name}.{os.getpid()}{OLD_SUFFIX}")
                test_pause("commit")
                _roll_forward(self.out_dir, self.name)  # fsyncs the output folder before the journal goes
                installed = True
        except KeyboardInterrupt:
            # A Ctrl-C held back during the renames is delivered here, once the new pair is complete.
            if installed:
                raise InterruptedAfterInstall(str(self.final)) from None
            raise

    def __exit__(self, *exc: Any) -> None:
        tempfile.tempdir = self._tempdir
        if self._tmpenv is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = self._tmpenv
        try:
            if self.dir is not None and not (state_dir(self.out_dir) / (self.name + JOURNAL_SUFFIX)).exists():
                _remove(self.dir)
        finally:
            if self.lock:
                self.lock.release()
