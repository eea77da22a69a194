"""One error hierarchy. Every message says what the user can do about it."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class EdgekitError(Exception):
    """Base class of every error edgekit raises on purpose. The CLI maps it to an exit code."""

    exit_code = 2


class UsageError(EdgekitError):
    """The user asked for something that does not exist or contradicts itself (exit 2)."""


class MissingDependencyError(EdgekitError):
    """An optional backend is not installed (exit 2). The message names the extra to install."""

    def __init__(self, what: str, extra: str, module: str | None = None) -> None:
        self.extra = extra
        detail = f" (could not import {module!r})" if module else ""
        super().__init__(f"{what} needs the '{extra}' extra{detail}: pip install 'edgekit[{extra}]'")


class EnvironmentProblem(EdgekitError):
    """This machine cannot do what was asked, through no fault of the user's file (exit 2): an
    emulator that computes wrongly, a tool that is missing. The message says what to set up."""


class ModelLoadError(EdgekitError):
    """A checkpoint could not be read or does not fit the architecture (exit 2)."""


class ExportError(EdgekitError):
    """A converter failed to write an artifact (exit 1: the job ran and failed)."""

    exit_code = 1


class ValidationError(EdgekitError):
    """An artifact could not be validated at all (exit 1)."""

    exit_code = 1


class IntegrityError(EdgekitError):
    """A file and its record disagree (name, size, hash, target or precision), or a record
    contradicts its own numbers (exit 1: the artifact cannot be trusted as described)."""

    exit_code = 1


class UnsupportedOpError(ValidationError):
    """A reference interpreter met an op it does not implement; the record says validation-skipped."""


class InterruptedAfterInstall(KeyboardInterrupt):
    """Ctrl-C arrived during an install's renames (after its commit point): the install was finished
    first, so ``installed`` (the file's path) is the new, complete pair; nothing after it ran."""

    def __init__(self, installed: str) -> None:
        super().__init__(installed)
        self.installed = installed


def unknown_choice(kind: str, value: str, choices: Iterable[str]) -> UsageError:
    """A UsageError for an unknown name that lists the choices and suggests the closest one."""
    choices = sorted(choices)
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return UsageError(f"unknown {kind} {value!r}.{hint} Choices: {', '.join(choices)}")
