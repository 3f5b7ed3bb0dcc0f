"""gatewaylens: see exactly how LLM gateways translate requests and responses between API dialects.

The public API (stable across releases) is what ``__all__`` lists; see :mod:`gatewaylens.api`.
Submodules are importable too, but they are internals.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "Analysis",
    "BadInput",
    "Behaviour",
    "Case",
    "CheckResult",
    "Corpus",
    "Exchange",
    "Finding",
    "GatewayProfile",
    "GatewayScore",
    "InputError",
    "MockServer",
    "__version__",
    "analyze",
    "capture",
    "check",
    "gateway_profiles",
    "load_corpus",
    "shipped_corpus",
    "targets",
]

# Eager, and after the submodules: ``capture`` and ``analyze`` are also the names of subpackages;
# importing :mod:`gatewaylens.api` loads them first, then the functions below take the names at the
# top level (``import gatewaylens.capture.cli`` still works: sys.modules holds the subpackage).
from gatewaylens.api import (
    Analysis,
    BadInput,
    Behaviour,
    Case,
    CheckResult,
    Corpus,
    Exchange,
    Finding,
    GatewayProfile,
    GatewayScore,
    InputError,
    MockServer,
    analyze,
    capture,
    check,
    gateway_profiles,
    load_corpus,
    shipped_corpus,
    targets,
)
