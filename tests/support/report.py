"""Helpers for tests of the analysis report (Markdown and HTML): small run directories and the
data a report page embeds.  Shared here so that no test module imports another."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

from gatewaylens.analyze.synthetic import answer_body, client_body, make_exchange, write_synthetic_run
from gatewaylens.capture.models import ClientResponse, Exchange
from gatewaylens.mock.models import MockAnswer

__all__ = ["page_data", "pipe_exchange", "write_run"]


def write_run(run_dir: Path, exchanges: list[Exchange], *, corpus: list[dict[str, object]] | None = None) -> Path:
    write_synthetic_run(run_dir, 0)
    with (run_dir / "exchanges.jsonl").open("w", encoding="utf-8") as fh:
        for ex in exchanges:
            fh.write(ex.model_dump_json() + "\n")
    if corpus is not None:
        (run_dir / "corpus.json").write_text(json.dumps({"cases": corpus}), encoding="utf-8")
    return run_dir


def pipe_exchange(value: str, gateway: str = "gw-a", case_id: str = "pipes") -> Exchange:
    body = {**client_body("chat", 1), "gwl_odd": value}
    up = copy.deepcopy(body)
    up.pop("gwl_odd")
    return make_exchange(gateway=gateway, case_id=case_id, dialect="chat", upstream="openai", body=body,
                         upstream_dialect="chat", upstream_body=up,
                         answer=MockAnswer(status=200, body=answer_body("chat", "gwl text", (1234, 567))),
                         client_response=ClientResponse(status=200, body=answer_body("chat", "gwl text", (1234, 567))))


def page_data(html: str) -> dict[str, object]:
    blocks = re.findall(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    assert len(blocks) == 1  # the data is embedded once
    data = json.loads(blocks[0])
    assert isinstance(data, dict)
    return data
