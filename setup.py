"""Build hook: copy the shipped data (corpus, compose file, container configs, gateway install
manifests and scripts) from the top of the checkout into the wheel's ``gatewaylens/data/``.

The files stay where they are edited (``corpus.json`` at the top, ``docker/``, ``gateways/``...);
the list is :data:`gatewaylens.datafiles.SHIPPED`, read here without importing the package (its
dependencies are not installed in an isolated build environment).  Everything else about the
project is declared in ``pyproject.toml``.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def shipped() -> list[str]:
    tree = ast.parse((HERE / "gatewaylens" / "datafiles.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "SHIPPED" for t in node.targets):
            value = ast.literal_eval(node.value)
            return [str(v) for v in value]
    raise RuntimeError("gatewaylens/datafiles.py: SHIPPED not found")


class BuildPyWithData(build_py):
    """``build_py`` plus the shipped data under ``<build_lib>/gatewaylens/data``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout itself (gatewaylens.datafiles.data_path)
        dest = Path(self.build_lib) / "gatewaylens" / "data"
        for rel in shipped():
            src = HERE / rel
            if not src.exists():
                raise RuntimeError(f"shipped data missing from the source tree: {rel}")
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, target, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("node_modules", "__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, target)


setup(cmdclass={"build_py": BuildPyWithData})
