"""``scripts/register-built-gateway.sh GATEWAY BINARY SOURCE_DIR``: register a GoModel or Bifrost
binary the user built from their own source tree (see :mod:`gatewaylens.capture.gateways._source`).

A module of its own, outside the gateways package, so ``python -m`` does not run a module that the
package has already imported.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gatewaylens.capture.gateways._source import SPECS, SourceError, launch_bin, register


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("gateway", type=click.Choice(sorted(SPECS)))
@click.argument("binary", type=click.Path(path_type=Path))
@click.argument("source_dir", type=click.Path(path_type=Path))
def main(gateway: str, binary: Path, source_dir: Path) -> None:
    """Register BINARY, built by you from SOURCE_DIR, as GATEWAY's binary in .gateways/bin."""
    try:
        record = register(gateway, binary, source_dir)
    except SourceError as e:
        click.echo(f"register-built-gateway: {gateway}: {e}", err=True)
        sys.exit(2)
    click.echo(f"{gateway}: registered {launch_bin() / record.binary}: {record.describe()}")


if __name__ == "__main__":
    main()
