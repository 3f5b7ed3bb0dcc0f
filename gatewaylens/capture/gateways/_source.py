"""Gateways built from the user's own source tree: registering the binary, and what a launcher trusts.

GoModel and Bifrost cannot come from the Go module proxy here (``gomodel.py`` and ``bifrost.py``
say why), so a user who has their source builds the binary with the gateway's own instructions
and registers it::

    scripts/register-built-gateway.sh gomodel  PATH/TO/gomodel      PATH/TO/GoModel-checkout
    scripts/register-built-gateway.sh bifrost  PATH/TO/bifrost-http PATH/TO/bifrost-checkout

Registering never builds anything and never edits the tree.  It checks that the binary is that
gateway's main package (its Go build info, read with ``go version -m``), reads the version the
tree itself declares, copies the binary to ``.gateways/bin/<binary>`` and writes beside it
``<binary>.version`` (the stamp every Go launcher reads) and ``<binary>.source.json``
(:class:`SourceBuild`: tree, commit, Go version, binary hash).  Bifrost also gets the tree's
``transports/config.schema.json`` as ``bifrost-http.schema.json``, which its launcher puts where
Bifrost looks, so it never downloads its schema at start.

Version policy: the version recorded is the one the tree (or the binary's own ``-version``)
declares, never the pin; launchers accept it and ``run.json`` records it with the provenance.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

REGISTER_SCRIPT = "scripts/register-built-gateway.sh"


class SourceError(Exception):
    """A registration cannot go on; the message is one line naming the file and what is wrong."""


class SourceBuild(BaseModel):
    """``.gateways/bin/<binary>.source.json``: where a registered binary came from."""

    model_config = ConfigDict(extra="forbid")

    format_version: Literal[1] = 1
    gateway: str
    binary: str
    version: str
    #: Where the version was read: ``binary -version``, ``git describe --tags`` or a version file.
    version_from: str
    source_tree: str
    #: ``git rev-parse HEAD`` of the tree (None when the tree is not a git checkout).
    commit: str | None = None
    go_version: str
    main_path: str
    #: SHA-256 of the binary as registered: a binary replaced afterwards is not trusted.
    sha256: str
    registered: datetime

    def describe(self) -> str:
        """One line for ``run.json`` and the report: how this binary was built."""
        commit = f"commit {self.commit[:12]}" if self.commit else "commit unknown (tree is not a git checkout)"
        return (f"built from source: {self.version} (version from {self.version_from}), {commit}, "
                f"{self.go_version}, main package {self.main_path}")


@dataclass(frozen=True)
class SourceSpec:
    """What one gateway's tree and binary look like."""

    gateway: str
    binary: str
    #: Module declared by the go.mod at ``module_dir`` of the tree, and the binary's main package.
    module: str
    module_dir: str
    main_path: str
    #: File in the tree holding the version (without a leading ``v``), or None: use the binary / git.
    version_file: str | None = None
    #: Flag that makes the binary print its version and exit, or None.
    version_flag: str | None = None
    #: Files copied from the tree next to the binary: tree path -> name in .gateways/bin.
    companions: tuple[tuple[str, str], ...] = ()


SPECS: dict[str, SourceSpec] = {
    # GoModel v0.1.22: go.mod declares `module gomodel`; cmd/gomodel/main.go prints version.Info()
    # ("gomodel v0.1.22 (commit: ..., built: ..., go...)") for -version; the Makefile stamps
    # internal/version.Version with `git describe --tags --always --dirty` (unset: "dev").
    "gomodel": SourceSpec(gateway="gomodel", binary="gomodel", module="gomodel", module_dir=".",
                          main_path="gomodel/cmd/gomodel", version_flag="-version"),
    # Bifrost transports v1.4.14: transports/version holds "1.4.14"; main.go's Version is only set by
    # -ldflags and shown in its start banner (no flag prints it); lib/validator.go reads
    # config.schema.json relative to the working directory before it would fetch it online.
    "bifrost": SourceSpec(gateway="bifrost", binary="bifrost-http", module="github.com/maximhq/bifrost/transports",
                          module_dir="transports", main_path="github.com/maximhq/bifrost/transports/bifrost-http",
                          version_file="transports/version",
                          companions=(("transports/config.schema.json", "bifrost-http.schema.json"),)),
}


def source_json(binary: str) -> Path:
    return launch_bin() / f"{binary}.source.json"


def launch_bin() -> Path:
    # Read through the _go module so tests that point GO_BIN elsewhere move this too.
    from gatewaylens.capture.gateways import _go

    return _go.GO_BIN


@lru_cache(maxsize=16)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_of(path: Path) -> str:
    st = path.stat()
    return _sha256(str(path), st.st_mtime_ns, st.st_size)


def read_source_build(binary: str) -> SourceBuild | None:
    """The registration record of ``binary`` (None when it was not registered from source)."""
    path = source_json(binary)
    if not path.exists():
        return None
    try:
        return SourceBuild.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(file)"
        raise SourceError(f"{path}: not a valid source record: {where}: {err['msg']}: register the binary again "
                          f"({REGISTER_SCRIPT})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"{path}: cannot be read: {e}") from None


def trust_problem(build: SourceBuild, stamp: str | None) -> str | None:
    """Why a registered binary is not to be trusted any more (None: it is as registered)."""
    exe = launch_bin() / build.binary
    if build.version != stamp:
        return (f"{exe}.version says {stamp!r} but {source_json(build.binary).name} says {build.version!r}: "
                f"register it again ({REGISTER_SCRIPT})")
    if sha256_of(exe) != build.sha256:
        return f"{exe} changed since it was registered: register it again ({REGISTER_SCRIPT})"
    return None


# --- reading a binary and a tree ---------------------------------------------------------------------


def _run(cmd: list[str], cwd: Path | None = None, timeout_s: float = 30.0) -> tuple[int, str]:
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=timeout_s, check=False,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 127, str(e)
    return out.returncode, (out.stdout or b"").decode(errors="replace") + (out.stderr or b"").decode(errors="replace")


def build_info(binary: Path) -> tuple[str, str, str]:
    """(go version, main package path, main module path) from the binary's Go build info."""
    go = shutil.which("go")
    if go is None:
        raise SourceError("go is not on PATH: it is needed to read the binary's build info (go version -m)")
    rc, out = _run([go, "version", "-m", str(binary)])
    if rc != 0:
        raise SourceError(f"{binary}: not a Go binary with build info ({out.strip().splitlines()[-1] if out.strip() else rc})")
    lines = out.splitlines()
    go_version = lines[0].rsplit(":", 1)[-1].strip() if lines else ""
    fields = {parts[0]: parts[1] for line in lines[1:] if len(parts := line.strip().split("\t")) >= 2}
    return go_version, fields.get("path", ""), fields.get("mod", "")


def declared_module(tree: Path, spec: SourceSpec) -> str:
    gomod = tree / spec.module_dir / "go.mod"
    try:
        text = gomod.read_text(encoding="utf-8")
    except OSError:
        raise SourceError(f"{gomod}: missing: {tree} is not a {spec.gateway} source tree") from None
    m = re.search(r"^module\s+(\S+)", text, re.M)
    return m.group(1) if m else ""


def git(tree: Path, *args: str) -> str | None:
    """Output of a git command in ``tree`` (None when git or the checkout is not there)."""
    if shutil.which("git") is None:
        return None
    rc, out = _run(["git", "-C", str(tree), *args])
    return out.strip() if rc == 0 and out.strip() else None


def binary_version(binary: Path, spec: SourceSpec) -> str | None:
    """The version the binary reports for itself, None when it cannot say (unstamped: "dev")."""
    if spec.version_flag is None:
        return None
    rc, out = _run([str(binary), spec.version_flag], timeout_s=10.0)
    # GoModel: "gomodel v0.1.22 (commit: a26fbd1, built: ..., go1.26.8)"; "gomodel dev (...)" unstamped.
    m = re.match(rf"^\s*{re.escape(spec.gateway)}\s+(\S+)", out) if rc == 0 else None
    if not m or m.group(1) in {"dev", "unknown", ""}:
        return None
    return m.group(1)


def tree_version(tree: Path, spec: SourceSpec) -> tuple[str, str] | None:
    """(version, where from) as the tree declares it, or None."""
    if spec.version_file:
        path = tree / spec.version_file
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError:
            raise SourceError(f"{path}: missing: {tree} is not a {spec.gateway} source tree") from None
        if not re.fullmatch(r"v?\d+\.\d+\.\d+\S*", text):
            raise SourceError(f"{path}: {text[:40]!r} is not a version")
        return ("v" + text.removeprefix("v"), spec.version_file)
    described = git(tree, "describe", "--tags", "--always", "--dirty")
    return (described, "git describe --tags") if described else None


def resolve_version(tree: Path, binary: Path, spec: SourceSpec) -> tuple[str, str]:
    """The one version both the tree and the binary agree on (either may be silent, not both)."""
    from_tree = tree_version(tree, spec)
    from_binary = binary_version(binary, spec)
    if from_tree and from_binary and from_tree[0] != from_binary:
        raise SourceError(f"{binary} says it is {from_binary} but {tree} is {from_tree[0]} ({from_tree[1]}): "
                          "was it built from this tree?")
    if from_binary:
        return from_binary, f"{spec.binary} {spec.version_flag}"
    if from_tree:
        return from_tree
    raise SourceError(f"{binary}: cannot tell its version: it reports none (built without the version -ldflags) "
                      f"and {tree} is not a git checkout with tags")


def register(gateway: str, binary: Path, tree: Path) -> SourceBuild:
    """Check ``binary`` against ``tree`` and install both records into ``.gateways/bin``."""
    spec = SPECS.get(gateway)
    if spec is None:
        raise SourceError(f"gateway {gateway!r}: unknown (from source: {', '.join(sorted(SPECS))})")
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise SourceError(f"{binary}: not an executable file")
    if not tree.is_dir():
        raise SourceError(f"{tree}: not a directory (the {spec.gateway} source tree the binary was built from)")
    tree = tree.resolve()
    module = declared_module(tree, spec)
    if module != spec.module:
        raise SourceError(f"{tree / spec.module_dir / 'go.mod'}: declares module {module!r}, not {spec.module!r}")
    go_version, main_path, main_module = build_info(binary)
    if main_path != spec.main_path or main_module != spec.module:
        raise SourceError(f"{binary}: its main package is {main_path or '?'} (module {main_module or '?'}), "
                          f"not {spec.main_path}: not a {spec.gateway} binary")
    version, version_from = resolve_version(tree, binary, spec)
    companions = [(tree / src, name) for src, name in spec.companions]
    for src, _ in companions:
        if not src.is_file():
            raise SourceError(f"{src}: missing from the source tree")

    bin_dir = launch_bin()
    bin_dir.mkdir(parents=True, exist_ok=True)
    dest = bin_dir / spec.binary
    if binary.resolve() != dest.resolve():
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.copy2(binary, tmp)
        os.replace(tmp, dest)
    for src, name in companions:
        shutil.copyfile(src, bin_dir / name)
    record = SourceBuild(gateway=spec.gateway, binary=spec.binary, version=version, version_from=version_from,
                         source_tree=str(tree), commit=git(tree, "rev-parse", "HEAD"), go_version=go_version,
                         main_path=main_path, sha256=sha256_of(dest), registered=datetime.now(UTC))
    source_json(spec.binary).write_text(record.model_dump_json(indent=2) + "\n", encoding="utf-8")
    # The stamp last: a launcher that sees it also sees the record it must agree with.
    (bin_dir / f"{spec.binary}.version").write_text(version + "\n", encoding="utf-8")
    return record
