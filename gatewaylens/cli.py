"""``gatewaylens``: one entry point with the three stages, and ``probe``, as subcommands."""

from __future__ import annotations

import importlib

import click

from gatewaylens import __version__

_STAGES = {
    "mock": ("gatewaylens.mock.cli", "Run the recording mock upstream."),
    "capture": ("gatewaylens.capture.cli", "Replay the corpus through gateways and store every exchange."),
    "analyze": ("gatewaylens.analyze.cli", "Turn a run into translation maps, findings, a report and fixtures."),
    "probe": ("gatewaylens.probe", "Send one request through one gateway and show what it did to it."),
}


class _Stages(click.Group):
    """Loads a stage only when it is used, so ``gatewaylens mock`` does not import analyze."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_STAGES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _STAGES:
            return None
        cmd = importlib.import_module(_STAGES[cmd_name][0]).main
        assert isinstance(cmd, click.Command)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each stage once, with its one-line description (without importing the stage)."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_mod, help_) in _STAGES.items()])


@click.group(cls=_Stages, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gatewaylens")
def main() -> None:
    """gatewaylens: see exactly how LLM gateways translate between API dialects."""
