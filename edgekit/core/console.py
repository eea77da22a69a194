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
