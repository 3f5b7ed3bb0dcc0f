"""``capture --docker``: start gateways as containers through the Docker Engine API.

The single source of truth for containers is ``docker-compose.yml`` (at the repo root; shipped in the
wheel with the ``docker/`` configs it mounts, see :mod:`gatewaylens.datafiles`): each gateway
service there carries labels ``gatewaylens.gateway: <profile name>`` and ``gatewaylens.health:
<path>``, a pinned image, configs mounted from ``docker/<name>/`` and its upstream pointed at
``http://mock:9999/ch/<name>``.  ``capture --docker`` runs those same services with host
networking and ``mock`` resolved to 127.0.0.1 (where capture's own mock listens), so the compose
file and ``--docker`` cannot drift apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gatewaylens.datafiles import data_path
from gatewaylens.dialects import redact_value
from gatewaylens.errors import GatewaylensError, InputError, first_error

COMPOSE_FILE = data_path("docker-compose.yml")
LABEL_GATEWAY = "gatewaylens.gateway"
LABEL_HEALTH = "gatewaylens.health"
MOCK_PORT = 9999


class DockerUnavailable(GatewaylensError, RuntimeError):
    """No Docker engine is reachable; the message is one line."""


class ComposeError(InputError, ValueError):
    """docker-compose.yml is malformed; the message names the file, service and field."""


class ComposeService(BaseModel):
    """The subset of a compose service gatewaylens reads (other keys are allowed and ignored)."""

    model_config = ConfigDict(extra="allow")
    image: str | None = None
    build: Any | None = None
    command: list[str] | str | None = None
    entrypoint: list[str] | str | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    volumes: list[str] = Field(default_factory=list)
    ports: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    depends_on: list[str] | dict[str, Any] = Field(default_factory=list)

    @field_validator("environment", "labels", mode="before")
    @classmethod
    def _list_to_dict(cls, v: Any) -> Any:
        if isinstance(v, list):
            pairs = [str(item).partition("=") for item in v]
            return {k: val for k, _, val in pairs}
        if isinstance(v, dict):
            return {str(k): "" if val is None else str(val) for k, val in v.items()}
        return v

    @field_validator("ports", mode="before")
    @classmethod
    def _ports_as_str(cls, v: Any) -> Any:
        return [str(p) for p in v] if isinstance(v, list) else v


class ComposeFile(BaseModel):
    model_config = ConfigDict(extra="allow")
    services: dict[str, ComposeService]


def load_compose(path: Path = COMPOSE_FILE) -> ComposeFile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ComposeError(f"{path}: cannot read: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise ComposeError(f"{path}: invalid YAML: {str(e).splitlines()[0]}") from None
    try:
        return ComposeFile.model_validate(data)
    except ValidationError as e:
        field, msg = first_error(e, "(root)")
        raise ComposeError(f"{path}: {field}: {msg}") from None


def gateway_services(compose: ComposeFile) -> dict[str, tuple[str, ComposeService]]:
    """``{profile name: (service name, service)}`` for every service labelled as a gateway."""
    out: dict[str, tuple[str, ComposeService]] = {}
    for svc_name, svc in compose.services.items():
        gw = svc.labels.get(LABEL_GATEWAY)
        if gw:
            out[gw] = (svc_name, svc)
    return out


_PINNED = re.compile(r"^[^:@\s]+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$")


def image_is_pinned(image: str) -> bool:
    """A tag other than ``latest``/``main``, or a digest."""
    if not _PINNED.match(image.rsplit("/", 1)[-1] if "@" not in image else image.split("/")[-1]):
        return False
    tag = image.rsplit(":", 1)[-1] if "@" not in image else "digest"
    return tag not in ("latest", "main", "master", "nightly", "edge")


def _mounted_files(svc: ComposeService, root: Path) -> Iterable[Path]:
    for vol in svc.volumes:
        src = vol.split(":", 1)[0]
        if src.startswith((".", "/")):
            p = (root / src).resolve() if src.startswith(".") else Path(src)
            if p.is_dir():
                yield from (f for f in sorted(p.rglob("*")) if f.is_file())
            elif p.is_file():
                yield p


def service_text(svc: ComposeService, root: Path) -> str:
    """Everything that can point a service at its upstream: env, command, mounted config files."""
    parts = [*svc.environment.values(), *(svc.command if isinstance(svc.command, list) else [svc.command or ""])]
    for f in _mounted_files(svc, root):
        try:
            parts.append(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
    return "\n".join(parts)


def _host_port(port: str) -> tuple[int, int] | None:
    bits = port.split("/")[0].split(":")
    try:
        if len(bits) == 1:
            return int(bits[0]), int(bits[0])
        return int(bits[-2]), int(bits[-1])
    except ValueError:
        return None


def validate_compose(path: Path = COMPOSE_FILE, expected: Iterable[str] = ()) -> list[str]:
    """Problems with the compose file, one line each (empty when it is sound)."""
    compose = load_compose(path)
    root = path.parent
    problems: list[str] = []
    gws = gateway_services(compose)
    for name in expected:
        if name not in gws:
            problems.append(f"{path.name}: no service labelled {LABEL_GATEWAY}={name}")
    if "mock" not in compose.services:
        problems.append(f"{path.name}: no 'mock' service")
    for name, (svc_name, svc) in gws.items():
        where = f"{path.name}: service {svc_name!r}"
        if not svc.image:
            problems.append(f"{where}: image: missing")
        elif not image_is_pinned(svc.image):
            problems.append(f"{where}: image: {svc.image!r} is not pinned to a version tag or digest")
        if f"mock:{MOCK_PORT}/ch/{name}" not in service_text(svc, root):
            problems.append(f"{where}: not pointed at its mock channel http://mock:{MOCK_PORT}/ch/{name}")
        if LABEL_HEALTH not in svc.labels:
            problems.append(f"{where}: labels: {LABEL_HEALTH} missing")
        if not svc.ports:
            problems.append(f"{where}: ports: none published")
        for port in svc.ports:
            hp = _host_port(port)
            if hp is None or hp[0] != hp[1]:
                problems.append(f"{where}: ports: {port!r} must publish the same port on the host (host networking in --docker)")
        for vol in svc.volumes:
            src = vol.split(":", 1)[0]
            if src.startswith(".") and not (root / src).exists():
                problems.append(f"{where}: volumes: {src} does not exist")
    return problems


class DockerGateways:
    """Start, health-check and remove gateway containers for one capture run."""

    def __init__(self, compose_path: Path = COMPOSE_FILE) -> None:
        try:
            from docker.errors import DockerException

            import docker
        except ImportError as e:  # pragma: no cover - docker is a declared dependency
            raise DockerUnavailable(f"the docker Python SDK is not installed: {e}") from None
        try:
            self.client = docker.from_env(timeout=10)
            self.client.ping()
        except DockerException as e:
            reason = str(e).splitlines()[0][:200]
            raise DockerUnavailable(f"no Docker engine reachable ({reason}); start Docker or use --launch instead") from None
        self.compose_path = compose_path
        self.compose = load_compose(compose_path)
        self.services = gateway_services(self.compose)
        self.containers: dict[str, Any] = {}

    def secrets(self, name: str) -> set[str]:
        """Credentials the service is given (its environment), for capture's scrubber."""
        from gatewaylens.capture.secrets import env_secrets

        svc = self.services.get(name)
        return env_secrets(svc[1].environment) if svc else set()

    def _resolve_volume(self, vol: str) -> str:
        src, _, rest = vol.partition(":")
        if src.startswith("."):
            src = str((self.compose_path.parent / src).resolve())
        return f"{src}:{rest}" if rest else src

    async def start(self, name: str, run_id: str, timeout_s: float = 120.0) -> str:
        """Start ``name``'s container; return its base URL once healthy."""
        if name not in self.services:
            raise DockerUnavailable(f"{self.compose_path.name} has no service for gateway {name!r}")
        svc_name, svc = self.services[name]
        hp = _host_port(svc.ports[0]) if svc.ports else None
        if hp is None:
            raise DockerUnavailable(f"{self.compose_path.name}: service {svc_name!r} publishes no usable port")
        kwargs: dict[str, Any] = {
            "image": svc.image, "detach": True, "name": f"gatewaylens-{run_id}-{svc_name}",
            "environment": svc.environment, "volumes": [self._resolve_volume(v) for v in svc.volumes],
            "network_mode": "host", "extra_hosts": {"mock": "127.0.0.1"},
            "labels": {**svc.labels, "gatewaylens.run": run_id},
        }
        if svc.command:
            kwargs["command"] = svc.command
        if svc.entrypoint:
            kwargs["entrypoint"] = svc.entrypoint
        container: Any = await asyncio.to_thread(lambda: self.client.containers.run(**kwargs))
        self.containers[name] = container
        base_url = f"http://127.0.0.1:{hp[0]}"
        health = base_url + svc.labels.get(LABEL_HEALTH, "/")
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                await asyncio.to_thread(container.reload)
                if container.status in ("exited", "dead"):
                    raise DockerUnavailable(f"{name} container exited: {self.logs(name)}")
                try:
                    if (await client.get(health)).status_code < 500:
                        return base_url
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.5)
        raise DockerUnavailable(f"{name} container not healthy at {health} after {timeout_s:.0f}s: {self.logs(name)}")

    def logs(self, name: str, lines: int = 5) -> str:
        container = self.containers.get(name)
        if container is None:
            return ""
        try:
            text = container.logs(tail=lines).decode("utf-8", "replace")
        except Exception as e:  # the engine may already have removed it
            return f"(no logs: {type(e).__name__})"
        return redact_value(" | ".join(line.strip()[:200] for line in text.strip().splitlines()))

    async def stop_all(self) -> None:
        for container in list(self.containers.values()):
            # Best effort: the engine may have removed it already.
            with contextlib.suppress(Exception):
                await asyncio.to_thread(container.remove, force=True)
        self.containers.clear()
