"""Helpers of the conversation and reported-bug tests (no test module imports another)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from tests.support.capture import ROOT, capture_cmd

CORPUS_DIR = ROOT / "corpus.d"


def run_capture(tmp_path: Path, mock_port: int, gateways: list[str], *extra: str,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``capture`` over ``tmp_path/corpus.json`` in a subprocess of this checkout."""
    return subprocess.run(capture_cmd(tmp_path, mock_port, gateways, *extra), cwd=tmp_path, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def drain(value: Any) -> Any:
    """Consume pydantic's lazy validators for ``Iterable[...]`` fields so nested items get validated."""
    if isinstance(value, dict):
        return {k: drain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [drain(v) for v in value]
    if type(value).__name__ == "ValidatorIterator":
        return [drain(v) for v in value]
    return value
