"""Where gatewaylens finds its own files, installed from a wheel or run from a source checkout.

Two kinds of files, resolved from the package, never from the current directory:

* **Shipped data** (read only): the corpus (``corpus.json`` and ``corpus.d/``), the compose file and
  the container configs under ``docker/``, the gateway install manifests (``gateways/``) and the
  install scripts (``scripts/``).  A wheel carries them in ``gatewaylens/data/`` (copied there at
  build time by ``setup.py``; they live at the top of the checkout, where they are edited); an
  editable install or a checkout on ``PYTHONPATH`` reads them at the top of the checkout.
* **The gateways home** (written by the install scripts): ``.gateways/`` (LiteLLM's venv, Go
  binaries) and ``gateways/npm/node_modules``.  ``$GATEWAYLENS_HOME`` when set; else the checkout;
  else ``$XDG_CACHE_HOME/gatewaylens`` (``~/.cache/gatewaylens``).  ``$GATEWAYLENS_TOOLS`` still
  overrides the ``.gateways`` part alone.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: filled by the wheel build (``setup.py``), absent in a checkout
PACKAGED_DATA = PACKAGE_DIR / "data"

#: What the wheel ships under ``gatewaylens/data/``, as paths relative to the checkout root
#: (``setup.py`` and ``MANIFEST.in`` read the same list; a test checks the built wheel holds them).
SHIPPED = (
    "corpus.json",
    "corpus.d",
    "docker-compose.yml",
    "docker",
    "gateways/npm/package.json",
    "gateways/npm/package-lock.json",
    "gateways/npm/loopback-only.cjs",
    "gateways/litellm/requirements.txt",
    "gateways/litellm/constraints.txt",
    "gateways/go/bricksllm/go.mod",
    "gateways/go/bricksllm/go.sum",
    "gateways/go/bricksllm/tools.go",
    "scripts/install-gateways.sh",
    "scripts/install-litellm.sh",
    "scripts/install-npm-gateways.sh",
    "scripts/install-go-gateways.sh",
    "scripts/install-bricksllm.sh",
)


@lru_cache(maxsize=1)
def checkout_root() -> Path | None:
    """The source checkout this package is imported from, or None for an installed wheel.

    A checkout is recognised by its ``pyproject.toml`` naming the project beside ``corpus.json``
    (``Path(__file__).parents[…]`` alone would point into ``site-packages`` once installed)."""
    root = PACKAGE_DIR.parent
    try:
        text = (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    return root if 'name = "gatewaylens"' in text and (root / "corpus.json").is_file() else None


def data_path(rel: str) -> Path:
    """A shipped file or directory (``rel`` as in :data:`SHIPPED`): the packaged copy, else the
    checkout's.  The returned path may not exist (a broken install); callers say so in one line."""
    packaged = PACKAGED_DATA / rel
    if packaged.exists():
        return packaged
    root = checkout_root()
    if root is not None and (root / rel).exists():
        return root / rel
    return packaged


def gateways_home() -> Path:
    """Where the install scripts put the gateways and where the launchers look for them."""
    env = os.environ.get("GATEWAYLENS_HOME")
    if env:
        return Path(env).expanduser()
    root = checkout_root()
    if root is not None:
        return root
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "gatewaylens"


def tools_dir() -> Path:
    """``.gateways/`` of the gateways home (``$GATEWAYLENS_TOOLS`` overrides)."""
    env = os.environ.get("GATEWAYLENS_TOOLS")
    return Path(env).expanduser() if env else gateways_home() / ".gateways"


def install_hint(script: str, names: str) -> str:
    """How to install a gateway, as a launcher's "not installed" line says it: the script in a
    checkout, ``gatewaylens gateways install NAMES`` from an installed wheel."""
    return f"run scripts/{script}" if checkout_root() is not None else f"run gatewaylens gateways install {names}"
