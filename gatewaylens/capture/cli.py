"""``capture``: replay the corpus through each gateway and store every exchange whole."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from gatewaylens.capture.corpus import InputError, default_corpus_paths, load_corpus
from gatewaylens.capture.runner import CaptureOptions, run_capture
from gatewaylens.capture.selection import check_url, select
from gatewaylens.dialects import DIALECTS, Dialect, UpstreamKind, redact_url
from gatewaylens.errors import one_line

EPILOG = """\b
Examples:
  capture --gateways litellm,portkey --launch
  capture --gateway mygw=http://127.0.0.1:4000 --corpus corpus.json --out runs/ci
  capture --gateway mygw:anthropic=http://127.0.0.1:4000 --cases 'messages-*'
  capture --gateways-file gateways.json --dialects chat,messages --no-stream
  capture --out runs/ci --resume --gateway mygw=http://127.0.0.1:4000
Exit codes: 0 every exchange captured (4xx/5xx answers are data), 1 some could not be
captured (timeout, refused, broken), 2 bad input, 130/143 interrupted (SIGINT/SIGTERM).
"""


def _fail(message: str) -> None:
    click.echo(one_line(message, 600), err=True)
    sys.exit(2)


@click.command(name="capture", context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.option("--gateways", "gateway_names", metavar="NAMES",
              help="Built-in gateways, comma-separated (or 'all').")
@click.option("--gateway", "custom", multiple=True, metavar="NAME[:KIND]=URL",
              help="A gateway of yours at the standard dialect paths, models as the corpus writes them; "
                   "KIND (openai|anthropic) is the upstream it is configured for. Repeatable.")
@click.option("--upstream", "default_upstream", type=click.Choice(["openai", "anthropic"]), default="openai",
              show_default=True, help="Upstream kind of --gateway entries that do not name one.")
@click.option("--gateways-file", "gateway_files", multiple=True, metavar="FILE",
              type=click.Path(dir_okay=False, path_type=Path),
              help="JSON/YAML file of gateway profiles (custom paths, headers, models, dialects).")
@click.option("--corpus", "corpus_paths", multiple=True, metavar="PATH", type=click.Path(path_type=Path),
              help="Corpus of cases: a JSON file or a directory of them (every *.json, merged); repeatable. "
                   "Default: corpus.json, plus corpus.d/ when it exists, in the current directory; "
                   "else the corpus shipped with gatewaylens.")
@click.option("--mock", "mock_url", default="http://127.0.0.1:9999", show_default=True, metavar="URL",
              help="The recording mock; started in-process when nothing answers on a loopback URL.")
@click.option("--no-start-mock", is_flag=True, help="Never start the mock; fail when it is not running.")
@click.option("--launch", is_flag=True, help="Start the selected built-in gateways that are installed, stop them at the end.")
@click.option("--docker", is_flag=True,
              help="Start the selected built-in gateways as containers (docker-compose.yml services) via the Docker Engine API.")
@click.option("--channel-base", metavar="URL",
              help="The mock's URL as the gateways reach it (e.g. http://mock:9999 under docker compose); default: --mock.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Write the run into DIR (default: a new output/runs/<UTC timestamp>/).")
@click.option("--resume", is_flag=True, help="With --out: complete an interrupted run, skipping finished exchanges.")
@click.option("--cases", "cases_glob", metavar="GLOB", help="Only cases whose id matches (fnmatch; comma-separated globs).")
@click.option("--dialects", metavar="LIST", help="Only these client dialects, e.g. chat,messages.")
@click.option("--stream/--no-stream", "stream", default=None, help="Only streaming / only non-streaming cases.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1, max=3600), default=60.0, show_default=True,
              metavar="SECONDS", help="Per request, whole answer included.")
@click.option("--settle-ms", type=click.FloatRange(min=0, max=10_000), default=20.0, show_default=True, metavar="MS",
              help="When an answer came without any upstream record yet, wait this long for a late "
                   "upstream call before concluding there was none (records present and nothing in "
                   "flight end the wait at once).")
@click.option("--json", "json_summary", is_flag=True, help="Print the summary as JSON on stdout.")
def main(gateway_names: str | None, custom: tuple[str, ...], default_upstream: str, gateway_files: tuple[Path, ...],
         corpus_paths: tuple[Path, ...], mock_url: str, no_start_mock: bool, launch: bool, docker: bool, channel_base: str | None,
         out: Path | None, resume: bool,
         cases_glob: str | None, dialects: str | None, stream: bool | None, timeout_s: float, settle_ms: float,
         json_summary: bool) -> None:
    """Send every corpus case through each gateway and record what reached the mock upstream."""
    try:
        dialect_list = _parse_dialects(dialects)
        corpus = load_corpus(list(corpus_paths) or default_corpus_paths())
        upstream: UpstreamKind = "anthropic" if default_upstream == "anthropic" else "openai"
        sel = select(gateway_names, custom, gateway_files, upstream)
        if channel_base is not None and not channel_base.startswith(("http://", "https://")):
            raise InputError(f"--channel-base: URL must start with http:// or https://, got {redact_url(channel_base)!r}")
        if not mock_url.startswith(("http://", "https://")):
            raise InputError(f"--mock: URL must start with http:// or https://, got {redact_url(mock_url)!r}")
        check_url(mock_url, "--mock")
        if channel_base is not None:
            check_url(channel_base, "--channel-base")
        recorded: dict[str, Any] = {
            "gateways": gateway_names, "gateway": [redact_url(c) for c in custom], "upstream": default_upstream,
            "gateways_file": [str(f) for f in gateway_files], "corpus": ",".join(str(p) for p in corpus.paths),
            "mock": redact_url(mock_url), "start_mock": not no_start_mock, "launch": launch, "docker": docker,
            "channel_base": redact_url(channel_base) if channel_base else None,
            "out": str(out) if out else None, "resume": resume, "cases": cases_glob, "dialects": dialect_list,
            "stream": stream, "timeout_s": timeout_s, "settle_ms": settle_ms,
        }
        opts = CaptureOptions(
            corpus=corpus, profiles=sel.profiles, custom=sel.custom, mock_url=mock_url.rstrip("/"),
            start_mock=not no_start_mock, launch=launch, docker=docker,
            channel_base=channel_base.rstrip("/") if channel_base else None, out=out, resume=resume, cases_glob=cases_glob,
            dialects=dialect_list, stream=stream, timeout_s=timeout_s, settle_s=settle_ms / 1000,
            settle_max_s=max(2.0, 20 * settle_ms / 1000), json_summary=json_summary, recorded_options=recorded,
        )
        outcome = asyncio.run(run_capture(opts))
    except InputError as e:
        _fail(str(e))
        return
    sys.exit(outcome.exit_code)


def _parse_dialects(value: str | None) -> list[Dialect] | None:
    if value is None:
        return None
    items = [d.strip() for d in value.split(",") if d.strip()]
    if not items:
        raise InputError(f"--dialects: empty list; known dialects: {', '.join(DIALECTS)}")
    bad = [d for d in items if d not in DIALECTS]
    if bad:
        raise InputError(f"--dialects: unknown dialect {', '.join(repr(b) for b in bad)}; known dialects: {', '.join(DIALECTS)}")
    return [d for d in DIALECTS if d in items]


if __name__ == "__main__":
    main()
