"""A private apt: Debian packages of another release or architecture, downloaded and unpacked, never
installed. Its own configuration, state and cache live in one folder, so the machine's dpkg and apt
never see an arm64 package (multiarch would let apt remove the amd64 python3).

The archive addresses are read from the machine's own apt sources (the mirror it is set up with);
only the suite and architecture change.
"""
from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


class AptUnavailable(RuntimeError):
    """Debian packages cannot be had here (no apt, no Debian sources, the archive said no)."""


@dataclass(frozen=True)
class Source:
    uri: str
    suite: str
    components: str = "main"


def _codename() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return ""


def system_archives() -> tuple[str | None, str | None]:
    """The machine's Debian archive URI and security archive URI, from its apt sources."""
    main = security = None
    files = sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) if Path("/etc/apt/sources.list.d").is_dir() else []
    for f in files:
        for stanza in re.split(r"\n\s*\n", f.read_text()):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith(("#", " ")):
                    k, v = line.split(":", 1)
                    fields[k.strip().lower()] = v.strip()
            if "deb" not in fields.get("types", "").split() or "uris" not in fields:
                continue
            uri = fields["uris"].split()[0]
            suites = fields.get("suites", "").split()
            if any(s.endswith("-security") for s in suites):
                security = security or uri
            elif "debian-archive-keyring" in fields.get("signed-by", "") or "debian" in uri:
                main = main or uri
    one_line = [Path("/etc/apt/sources.list")] + (sorted(Path("/etc/apt/sources.list.d").glob("*.list"))
                                                 if Path("/etc/apt/sources.list.d").is_dir() else [])
    for f in one_line:
        try:
            text = f.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            parts = re.sub(r"\[[^]]*\]", "", line).split()
            if len(parts) >= 3 and parts[0] == "deb":
                if parts[2].endswith("-security"):
                    security = security or parts[1]
                elif "debian" in parts[1]:
                    main = main or parts[1]
    return main, security


def release_sources(suite: str, security: bool = True) -> list[Source]:
    """Sources for a Debian release (``bookworm``, ``trixie``, ``bullseye``) on the machine's mirror."""
    main, sec = system_archives()
    if not main:
        raise AptUnavailable("no Debian archive in this machine's apt sources (/etc/apt/sources.list*)")
    out = [Source(main, suite)]
    if security and sec:
        out.append(Source(sec, f"{suite}-security"))
    return out


class PrivateApt:
    """apt-get / apt-cache with their own configuration under ``root`` for one architecture."""

    def __init__(self, root: Path, arch: str, sources: Sequence[Source]) -> None:
        self.root = Path(root)
        self.arch = arch
        self.sources = list(sources)

    def options(self) -> list[str]:
        r = self.root
        return [
            "-o", f"Dir={r}", "-o", f"Dir::State::status={r}/var/lib/dpkg/status",
            "-o", f"APT::Architecture={self.arch}", "-o", f"APT::Architectures::={self.arch}",
            "-o", "Acquire::Languages=none", "-o", "Acquire::Check-Valid-Until=false",
            "-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root", "-q",
        ]

    def _run(self, tool: str, args: Sequence[str], cwd: Path | None = None, timeout: float = 600) -> str:
        try:
            proc = subprocess.run([tool, *self.options(), *args], capture_output=True, text=True, cwd=cwd,
                                  timeout=timeout, check=False, env={**os.environ, "LC_ALL": "C"})
        except FileNotFoundError:
            raise AptUnavailable(f"{tool} not found: Debian packages cannot be fetched on this machine") from None
        except subprocess.TimeoutExpired:
            raise AptUnavailable(f"{tool} {' '.join(args[:2])} timed out after {timeout:.0f} s") from None
        if proc.returncode != 0:
            err = " | ".join(line for line in proc.stderr.strip().splitlines() if not line.startswith("W:"))[-600:]
            raise AptUnavailable(f"{tool} {' '.join(args)} failed: {err or proc.stdout[-300:]}")
        return proc.stdout

    def update(self) -> None:
        if not KEYRING.exists():
            raise AptUnavailable(f"{KEYRING} is missing (apt-get install debian-archive-keyring)")
        r = self.root
        for d in ("etc/apt/sources.list.d", "etc/apt/apt.conf.d", "etc/apt/preferences.d", "var/lib/apt/lists/partial",
                  "var/cache/apt/archives/partial", "var/lib/dpkg"):
            (r / d).mkdir(parents=True, exist_ok=True)
        (r / "var/lib/dpkg/status").touch()
        stanzas = [f"Types: deb\nURIs: {s.uri}\nSuites: {s.suite}\nComponents: {s.components}\nSigned-By: {KEYRING}\n"
                   for s in self.sources]
        (r / "etc/apt/sources.list.d/private.sources").write_text("\n".join(stanzas))
        self._run("apt-get", ["update"])

    def version(self, package: str) -> str:
        out = self._run("apt-cache", ["show", "--no-all-versions", package])
        m = re.search(r"^Version: (\S+)", out, re.MULTILINE)
        return m.group(1) if m else "?"

    def closure(self, roots: Iterable[str], stop: Iterable[str] = ()) -> list[str]:
        """``roots`` and what they Depend/Pre-Depend on (first alternative, first provider of a
        virtual package), not descending into ``stop`` (package tools a python does not need)."""
        roots = list(roots)
        out = self._run("apt-cache", ["depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                                      "--no-breaks", "--no-replaces", "--no-enhances", *roots])
        graph: dict[str, list[str]] = {}
        current = None
        skip_alternative = False
        pending_virtual = False
        for line in out.splitlines():
            if not line.startswith(" "):
                current = line.strip()
                graph.setdefault(current, [])
                skip_alternative = pending_virtual = False
                continue
            if current is None:
                continue
            if line.startswith("    "):  # provider of the virtual package above
                if pending_virtual:
                    graph[current].append(line.strip())
                    pending_virtual = False
                continue
            text = line.strip()
            alternative_follows = text.startswith("|")
            kind, _, name = text.lstrip("|").partition(":")
            if kind.strip() not in ("Depends", "PreDepends"):
                skip_alternative = alternative_follows
                continue
            name = name.strip()
            if not skip_alternative:
                if name.startswith("<"):
                    pending_virtual = True
                else:
                    graph[current].append(name)
            skip_alternative = alternative_follows
        stop = set(stop)
        seen: list[str] = []
        todo = list(roots)
        while todo:
            p = todo.pop(0)
            if p in seen or p in stop:
                continue
            seen.append(p)
            todo.extend(graph.get(p, []))
        return seen

    def download(self, packages: Sequence[str], dest: Path) -> list[Path]:
        dest.mkdir(parents=True, exist_ok=True)
        before = set(dest.glob("*.deb"))
        self._run("apt-get", ["download", *packages], cwd=dest, timeout=1800)
        return sorted(set(dest.glob("*.deb")) - before)


def extract(deb: Path, dest: Path, members: Sequence[str] = ()) -> None:
    """Unpack a .deb's files into ``dest`` (only ``members``, e.g. ``./usr/bin/qemu-aarch64``, if given)."""
    dest.mkdir(parents=True, exist_ok=True)
    if not members:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
        return
    deb_tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    try:
        subprocess.run(["tar", "-x", "-C", str(dest), *members], stdin=deb_tar.stdout, check=True)
    finally:
        if deb_tar.stdout:
            deb_tar.stdout.close()
        deb_tar.wait()
