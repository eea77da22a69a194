"""Where output goes: results on stdout, edgekit's progress on stderr, library noise in a log file.

``console`` is the one rich console (stderr) for progress and step logs; stdout stays for tables
and JSON. ``quiet_libraries`` routes the chatter of transformers, torch, torchao, absl/TF and
LiteRT (warnings, progress bars, load reports) to the log file (``--verbose``: to stderr), keeping
errors visible. ``native_output_to_log`` catches what converters and runtimes print from native code.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Iterator

from rich.console import Console

# soft_wrap: a long line (a path) is never broken at the terminal width, so a path copied out of a
# log or a CI transcript (where rich assumes 80 columns) is whole.
console = Console(stderr=True, highlight=False, soft_wrap=True)


def interactive() -> bool:
    """Whether progress bars make sense: stderr is a terminal (in a log they are one long line)."""
    try:
        return console.file.isatty()
    except (AttributeError, ValueError):
        return False


class _Lines:
    """Progress for a file or a pipe: a plain line at most every ``every_s`` seconds and one at the
    end (count, rate, ETA, the latest postfix), never a carriage return."""

    def __init__(self, total: int | None, desc: str, unit: str, initial: int, every_s: float) -> None:
        import time

        self._clock = time.monotonic
        self.total, self.desc, self.unit, self.every_s = total, desc, unit, every_s
        self.n = self._start_n = initial
        self._t0 = self._last = self._clock()
        self._post = ""
        self._closed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._clock() - self._last >= self.every_s:
            self._say()

    def set_postfix(self, refresh: bool = False, **kw: object) -> None:  # noqa: ARG002 - tqdm's signature
        self._post = ", ".join(f"{k}={v}" for k, v in kw.items())

    def reset(self, total: int | None = None) -> None:
        self.total = total

    def close(self) -> None:
        if not self._closed and self.n != self._start_n:
            self._say()
        self._closed = True

    def _say(self) -> None:
        now = self._clock()
        self._last = now
        done, spent = self.n - self._start_n, now - self._t0
        unit = self.unit.strip()
        parts = [f"{self.n:,}/{self.total:,} {unit} ({100 * self.n / self.total:.0f}%)" if self.total
                 else f"{self.n:,} {unit}"]
        if done > 0 and spent > 0:
            per = spent / done
            parts.append(f"{per:.2f} s/{unit.rstrip('s') or 'item'}" if per >= 1 else f"{1 / per:,.1f} {unit}/s")
            if self.total:
                parts.append(f"ETA {_clock_time(per * max(0, self.total - self.n))}")
        parts.append(f"{_clock_time(spent)} elapsed")
        if self._post:
            parts.append(self._post)
        print(f"{self.desc}: " + " · ".join(parts), file=console.file, flush=True)


def _clock_time(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class _Off:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, refresh: bool = False, **kw: object) -> None: ...
    def reset(self, total: int | None = None) -> None: ...
    def close(self) -> None: ...


def progress(total: int | None, desc: str, *, unit: str = "it", enabled: bool = True, initial: int = 0,
             lines_every_s: float | None = 60.0, leave: bool = True) -> object:
    """The one progress reporter (``update``, ``set_postfix``, ``reset(total)``, ``close``) on stderr.

    On a terminal: a tqdm bar. In a file or a pipe (a log, CI): no bar -- carriage returns make a log
    one long line -- but, when ``lines_every_s`` is set, a plain line that often with the count, the
    rate and the ETA (a long training run in a log still says how far it is); ``None``: silent there.
    ``enabled=False`` (``--no-progress``, not the main process) is silent everywhere.
    """
    if not enabled:
        return _Off()
    if interactive():
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=console.file, dynamic_ncols=True,
                    leave=leave)
    if lines_every_s is None:
        return _Off()
    return _Lines(total, desc, unit, initial, lines_every_s)


#: Loggers of libraries whose INFO/WARNING lines are not the user's business.
#: Each target adds the modules it requires (``Converter.requires``): no target is named here.
NOISY = ("transformers", "torch", "torchao", "torch.utils._pytree", "torch._dynamo", "torch.export",
         "absl", "tensorflow")


def _noisy() -> tuple[str, ...]:
    from edgekit.core import registry

    try:
        backends = [m for conv in registry.converters().values() for m in conv.requires]
    except Exception:  # noqa: BLE001 - a broken plug-in must not stop the console from quieting the rest
        backends = []
    return tuple(dict.fromkeys(NOISY + tuple(backends)))

_state: dict[str, object] = {"verbose": False, "log": None}


def verbose() -> bool:
    return bool(_state["verbose"])


def log_path() -> Path | None:
    return _state["log"]  # type: ignore[return-value]


def quiet_libraries(verbose: bool = False, log_file: Path | None = None) -> None:
    """Send library logging to ``log_file`` (or, with ``verbose``, to stderr); errors stay on stderr.

    Safe to call again (e.g. once the output folder is known, or after torch was imported, which
    resets its own loggers' levels).
    """
    _state["verbose"] = verbose
    _state["log"] = None
    if not verbose:
        # Native libraries read these when they load: absl/TF/LiteRT and glog (XNNPACK and others).
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    handler: logging.Handler
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
    elif log_file is not None and (handler := _log_handler(Path(log_file))) is not None:
        _state["log"] = Path(log_file)
    else:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    errors = logging.StreamHandler(sys.stderr)
    errors.setLevel(logging.ERROR)
    for name in _noisy():
        lg = logging.getLogger(name)
        for h in list(lg.handlers):
            if getattr(h, "_edgekit", False) or not verbose:
                lg.removeHandler(h)
        handler._edgekit = True  # type: ignore[attr-defined]
        errors._edgekit = True  # type: ignore[attr-defined]
        lg.addHandler(handler)
        if not verbose:
            lg.addHandler(errors)
        lg.setLevel(logging.INFO if verbose else logging.WARNING)
        lg.propagate = False
    logging.captureWarnings(not verbose)  # warnings.warn -> the "py.warnings" logger -> the log file
    pyw = logging.getLogger("py.warnings")
    pyw.handlers = [handler]
    pyw.propagate = False
    if not verbose:
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
    if "transformers" in sys.modules:
        _quiet_transformers(verbose)


def _log_handler(log_file: Path) -> logging.Handler | None:
    """A handler appending to ``log_file``; None (after a one-line note) when the folder cannot take
    it (read-only, full, not ours): library chatter is then dropped, errors still reach stderr."""
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        return logging.FileHandler(log_file, encoding="utf-8")
    except OSError as e:
        print(f"edgekit: note: no log file ({log_file}: {e.strerror or e}); library messages are not kept",
              file=sys.stderr)
        return None


def _quiet_transformers(verbose: bool) -> None:
    import transformers

    if verbose:
        transformers.utils.logging.set_verbosity_info()
        transformers.utils.logging.enable_progress_bar()
    else:
        transformers.utils.logging.set_verbosity_error()  # e.g. the "LOAD REPORT ... UNEXPECTED" blocks
        transformers.utils.logging.disable_progress_bar()  # "Loading weights", "Writing model shards"


def reset() -> None:
    """Forget the log file (the end of one CLI command in a longer-lived process)."""
    _state["log"] = None


@contextlib.contextmanager
def native_output_to_log() -> Iterator[None]:
    """Send what libraries print, from Python or from native code on file descriptors 1 and 2, to
    the log for the duration; edgekit's own console output still reaches the user's stderr.

    litert-torch prints its progress to fd 1 (it would land inside the table a user pipes from
    stdout); absl, LiteRT's XNNPACK delegate and ExecuTorch's cpuinfo write to fd 2. With
    ``--verbose``, or when there is no log file, fd 1 goes to stderr and fd 2 is left alone.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    log = None
    if not verbose() and log_path() is not None:
        try:
            log = open(log_path(), "a", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError:  # the folder went away: the user's stderr it is
            log = None
    saved1, saved2 = os.dup(1), os.dup(2)
    user_err = os.fdopen(os.dup(saved2), "w", encoding="utf-8", errors="replace", buffering=1)
    try:
        if log is not None:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        else:
            os.dup2(saved2, 1)
        # edgekit's own console keeps writing to the user's stderr; Python-level writes of libraries
        # (ExecuTorch logs through sys.stderr) follow the file descriptors into the log.
        console.file = user_err
        with contextlib.redirect_stdout(log or user_err), contextlib.redirect_stderr(log or user_err):
            yield
    finally:
        console.file = None  # back to following sys.stderr
        for stream in (sys.stdout, sys.stderr, user_err):
            stream.flush()
        _flush_c_stdio()  # native code (ExecuTorch's logger) may buffer in C stdio: flush it into the log
        if log is not None:
            log.flush()
        os.dup2(saved1, 1)
        os.dup2(saved2, 2)
        os.close(saved1)
        os.close(saved2)
        user_err.close()
        if log is not None:
            log.close()


def _flush_c_stdio() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to ask (not POSIX): nothing buffered there to lose
        pass


def quiet_backends(out: Path | None = None) -> None:
    """Import torch and transformers (every command that calls this needs them) and then route their
    chatter, and every other library's, to ``out/edgekit.log`` (``--verbose``: to stderr)."""
    quiet_libraries(verbose())  # before the imports: native libraries read the environment at load
    import torch
    import transformers  # noqa: F401

    from edgekit.core.threads import choose

    # PyTorch's pool sized to the free cores (a starved pool is 10-30x slower on a busy machine);
    # commands with --threads set it again to the user's number.
    torch.set_num_threads(choose())

    quiet_libraries(verbose(), Path(out) / "edgekit.log" if out is not None else None)
