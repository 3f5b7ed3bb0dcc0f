"""``mock``: run the recording mock upstream."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gatewaylens.mock.server import (
    DEFAULT_MAX_RECORDS,
    TOKEN_HEADER,
    MockServer,
    is_loopback_host,
    run_forever,
)

EXAMPLE_CHANNELS = ["litellm", "portkey", "claude-code-router", "gomodel", "bifrost", "bricksllm"]


@click.command(name="mock", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Anything but loopback needs --allow-remote.")
@click.option("--allow-remote", is_flag=True,
              help="Allow a --host that is not loopback (0.0.0.0, a LAN address): the mock and its control "
                   "API become reachable from other machines; a warning is printed.")
@click.option("--port", default=9999, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free port).")
@click.option("--record-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Append every exchange as one JSON line, flushed as written (tail -f friendly).")
@click.option("--latency-ms", default=0.0, show_default=True, type=click.FloatRange(0, 600_000),
              help="Wait this long before every answer.")
@click.option("--max-records", default=DEFAULT_MAX_RECORDS, show_default=True, type=click.IntRange(1),
              help="Records kept in memory per channel (oldest dropped first; the record file keeps all).")
@click.option("--no-record", is_flag=True, help="Keep no records in memory (benchmark baseline).")
@click.option("--quiet", "-q", is_flag=True, help="Do not print a line per request.")
@click.option("--token", envvar="GATEWAYLENS_MOCK_TOKEN", metavar="TOKEN",
              help="Control token for /__mock/log, last, script and reset (header x-gwl-token). "
                   "Default: a random one, printed at start. Env: GATEWAYLENS_MOCK_TOKEN.")
@click.option("--no-token", is_flag=True,
              help="Run the control API open: any local process may read, script and reset every channel "
                   "(leases still keep two captures apart, and resets are still counted).")
def main(host: str, port: int, allow_remote: bool, record_file: Path | None, latency_ms: float, max_records: int,
         no_record: bool, quiet: bool, token: str | None, no_token: bool) -> None:
    """Serve OpenAI Chat Completions, OpenAI Responses and Anthropic Messages, and record everything.

    Point each gateway at its own channel, e.g. http://127.0.0.1:9999/ch/litellm.
    Control API under /__mock/ (reset, log, last, health, script, lease); every call but health and
    lease needs the control token printed at start, or a channel's lease token.
    """
    if not is_loopback_host(host) and not allow_remote:
        click.echo(f"mock: --host {host} is not a loopback address: the mock and its control API would be reachable "
                   "from other machines; add --allow-remote to do it anyway", err=True)
        sys.exit(2)
    if token is not None and (len(token) < 8 or any(c.isspace() or not c.isprintable() for c in token)):
        click.echo("mock: --token must be at least 8 printable characters without spaces", err=True)
        sys.exit(2)

    def log(line: str) -> None:
        click.echo(line, err=True)

    server = MockServer(host, port, record_file=record_file, latency_ms=latency_ms, record=not no_record,
                        max_records=max_records, log=None if quiet else log, token=token,
                        require_token=not no_token, allow_remote=allow_remote)

    def banner(srv: MockServer) -> None:
        click.echo(f"gatewaylens mock listening on {srv.url} (instance {srv.state.instance})", err=True)
        click.echo("Upstream base URLs to give gateways (OpenAI-style clients usually add /v1):", err=True)
        for ch in EXAMPLE_CHANNELS:
            click.echo(f"  {ch:<20} {srv.url}/ch/{ch}", err=True)
        click.echo(f"  {'(no prefix)':<20} {srv.url}   -> channel 'default'", err=True)
        click.echo(f"Control API: {srv.url}/__mock/health | log?channel=&since= | last | reset | script | lease", err=True)
        if srv.token is None:
            click.echo("Control token: none (--no-token): any local process may read, script and reset channels", err=True)
        elif token is None:
            click.echo(f"Control token: {srv.token}  (send it as header {TOKEN_HEADER}; capture needs none: it leases "
                       "its channels)", err=True)
        else:
            click.echo(f"Control token: as given (--token / GATEWAYLENS_MOCK_TOKEN); header {TOKEN_HEADER}", err=True)
        if not is_loopback_host(host):
            click.echo(f"WARNING: listening on {host}, beyond loopback (--allow-remote): other machines can reach the "
                       "mock" + (" and, with no token, its whole control API" if srv.token is None else
                                 "; keep the control token secret"), err=True)
        if record_file:
            click.echo(f"Recording to {record_file}", err=True)
        click.echo("Ctrl-C to stop.", err=True)

    try:
        run_forever(server, banner)
    except OSError as e:
        click.echo(f"mock: cannot listen on {host}:{port}: {e.strerror or e}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
