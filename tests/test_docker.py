"""The Docker path: docker-compose.yml is sound, and `capture --docker` is real code.

This machine runs no Docker engine, so the container test skips with that reason; the compose
file is validated here (parsed, images pinned, every gateway pointed at its own mock channel).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gatewaylens.capture.docker_launch import (
    COMPOSE_FILE,
    DockerGateways,
    DockerUnavailable,
    gateway_services,
    image_is_pinned,
    load_compose,
    validate_compose,
)
from gatewaylens.capture.gateways import PROFILES

# BricksLLM's upstream URLs are hard-coded; only --launch (netns + TLS forwarder) can redirect it.
IN_COMPOSE = sorted(n for n in PROFILES if n != "bricksllm")


def docker_reason() -> str | None:
    try:
        DockerGateways()
    except DockerUnavailable as e:
        return str(e)
    return None


def test_compose_is_valid_and_matches_profiles() -> None:
    assert validate_compose(COMPOSE_FILE, IN_COMPOSE) == []
    services = gateway_services(load_compose())
    assert sorted(services) == IN_COMPOSE
    for name, (_, svc) in services.items():
        # One source of truth for pins: the profile and the compose file agree.
        assert svc.image == PROFILES[name].image, name
        port = int(svc.ports[0].split(":")[-1])
        assert PROFILES[name].base_url.endswith(f":{port}"), name
    ports = [svc.ports[0] for _, svc in services.values()]
    assert len(set(ports)) == len(ports), "host networking needs distinct ports"


@pytest.mark.parametrize(("image", "pinned"), [
    ("ghcr.io/berriai/litellm:v1.106.12", True), ("redis:7.2.5-alpine", True), ("x/y@sha256:" + "a" * 64, True),
    ("portkeyai/gateway", False), ("portkeyai/gateway:latest", False), ("registry:5000/img", False),
])
def test_image_pinning(image: str, pinned: bool) -> None:
    assert image_is_pinned(image) is pinned


def test_validation_finds_each_problem(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "c.yaml").write_text("base_url: http://mock:9999/ch/other\n")
    (tmp_path / "docker-compose.yml").write_text("""
services:
  gw1:
    image: vendor/gw1:latest
    volumes: ["./cfg:/cfg:ro"]
    ports: ["8001:8000"]
    labels: {gatewaylens.gateway: gw1}
  gw2:
    image: vendor/gw2:1.2.3
    environment: {UPSTREAM: "http://mock:9999/ch/gw2"}
    volumes: ["./missing:/x"]
    ports: ["9002:9002"]
    labels: {gatewaylens.gateway: gw2, gatewaylens.health: /health}
""")
    problems = validate_compose(tmp_path / "docker-compose.yml", ["gw1", "gw2", "gw3"])
    text = "\n".join(problems)
    assert "gatewaylens.gateway=gw3" in text
    assert "no 'mock' service" in text
    assert "'gw1': image: 'vendor/gw1:latest' is not pinned" in text
    assert "'gw1': not pointed at its mock channel http://mock:9999/ch/gw1" in text
    assert "'gw1': labels: gatewaylens.health missing" in text
    assert "'gw1': ports: '8001:8000'" in text
    assert "'gw2': volumes: ./missing does not exist" in text
    assert not any("'gw2': image" in p or "'gw2': not pointed" in p for p in problems)


def test_compose_parse_errors_name_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services: [oops")
    with pytest.raises(ValueError, match=r"docker-compose\.yml: invalid YAML"):
        load_compose(bad)
    bad.write_text("services:\n  x:\n    ports: 5\n")
    with pytest.raises(ValueError, match=r"docker-compose.yml: services.x.ports"):
        load_compose(bad)


@pytest.mark.skipif(docker_reason() is None, reason="a Docker engine is reachable: the no-engine path is not taken")
def test_capture_docker_without_engine_is_one_line_exit_2(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "gatewaylens.capture", "--docker", "--gateways", "litellm",
                        "--out", str(tmp_path / "run"), "--corpus", str(Path(__file__).parents[1] / "corpus.json")],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert "--docker: no Docker engine reachable" in lines[0]
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()  # nothing started, nothing written


@pytest.mark.docker
@pytest.mark.slow
def test_capture_docker_runs_gateway_containers(tmp_path: Path) -> None:
    reason = docker_reason()
    if reason:
        pytest.skip(reason)
    r = subprocess.run([sys.executable, "-m", "gatewaylens.capture", "--docker", "--gateways", "portkey",
                        "--cases", "basic-*", "--out", str(tmp_path / "run")],
                       capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
                       cwd=Path(__file__).parents[1])
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "run" / "exchanges.jsonl").read_text().splitlines()
    assert any('"upstream_requests":[{' in line for line in lines)
