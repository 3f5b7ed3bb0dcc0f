"""gatewaylens: see exactly how LLM gateways translate requests and responses between API dialects.

The public API (stable across releases) is what ``__all__`` lists; see :mod:`gatewaylens.api`.
Submodules are importable too, but they are internals.
"""

from __future__ import annotations

__version__ = "0.1.0"

# Eager, and after the submodules: ``capture`` and ``analyze`` are also the names of subpackages;
# importing :mod:`gatewaylens.api` loads them first, then the functions below take the names at the
# top level (``import gatewaylens.capture.cli`` still works: sys.modules holds the subpackage).
# The public names are listed once, in ``gatewaylens.api.__all__``.
from gatewaylens import api as _api
from gatewaylens.api import *  # noqa: F403

__all__ = ["__version__"]
__all__ += _api.__all__
