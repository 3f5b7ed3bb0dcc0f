"""``gatewaylens``: one entry point with the three stages, ``probe``, and the corpus, schema and gateways tools as subcommands."""

from __future__ import annotations

import importlib

import click

from gatewaylens import __version__

#: name -> (module, attribute, one-line help); loaded only when used
_COMMANDS = {
    "mock": ("gatewaylens.mock.cli", "main", "Run the recording mock upstream."),
    "capture": ("gatewaylens.capture.cli", "main", "Replay the corpus through gateways and store every exchange."),
    "analyze": ("gatewaylens.analyze.cli", "main", "Turn a run into translation maps, findings, a report and fixtures."),
    "probe": ("gatewaylens.probe", "main", "Send one request through one gateway and show what it did to it."),
    "corpus": ("gatewaylens.tools_cli", "corpus_cmd", "The shipped corpus: corpus export PATH writes it for editing."),
    "schema": ("gatewaylens.tools_cli", "schema_cmd", "JSON Schema of a file format (corpus, run, findings, ...)."),
    "gateways": ("gatewaylens.tools_cli", "gateways_cmd", "The built-in gateways: list (ready or why not), install."),
}


class _Stages(click.Group):
    """Loads a command only when it is used, so ``gatewaylens mock`` does not import analyze."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _COMMANDS:
            return None
        module, attr, _help = _COMMANDS[cmd_name]
        cmd = getattr(importlib.import_module(module), attr)
        assert isinstance(cmd, click.Command)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command once, with its one-line description (without importing it)."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_mod, _attr, help_) in _COMMANDS.items()])


@click.group(cls=_Stages, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gatewaylens")
def main() -> None:
    """gatewaylens: see exactly how LLM gateways translate between API dialects."""
