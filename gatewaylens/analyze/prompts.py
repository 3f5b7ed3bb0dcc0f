"""``prompts/<case>.md``: one self-contained AI-review prompt per case.

Exchanges of a case are scattered through ``exchanges.jsonl`` (gateways are captured
concurrently), so each exchange's section is appended to a per-case part file as it is analyzed
and the prompts are assembled at the end: memory stays flat however long the run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from gatewaylens.analyze.engine import ExchangeResult
from gatewaylens.analyze.models import Verdict
from gatewaylens.analyze.report import environment
from gatewaylens.analyze.values import elide


def verdict_schema() -> dict[str, Any]:
    return Verdict.model_json_schema()


def _answer(u: Any) -> Any:
    resp = u.response
    if resp.frames is not None:
        frames = []
        for f in resp.frames:
            try:
                data: Any = json.loads(f.data)
            except ValueError:
                data = f.data
            frames.append({"event": f.event, "data": data} if f.event else {"data": data})
        return elide(frames)
    return elide(resp.body)


#: A prompt must fit a reviewer's context: sections past this many per case are only counted.
MAX_SECTIONS_PER_CASE = 30


class PromptWriter:
    def __init__(self, out_dir: Path, notes: dict[str, dict[str, Any]]) -> None:
        self.out_dir = out_dir
        self.parts = out_dir / ".parts"
        self.parts.mkdir(parents=True, exist_ok=True)
        self.notes = notes
        self.env = environment()
        self.tpl_head = self.env.get_template("prompt_head.md.j2")
        self.tpl_ex = self.env.get_template("prompt_exchange.md.j2")
        self.tpl_tail = self.env.get_template("prompt_tail.md.j2")
        self.cases: dict[str, tuple[str, bool]] = {}
        self.sections: dict[str, int] = {}
        self.omitted: dict[str, int] = {}

    def wants(self, case_id: str) -> bool:
        """Whether an exchange of this case would get a section (else :meth:`omit` counts it)."""
        return case_id not in self.cases or self.sections.get(case_id, 0) < MAX_SECTIONS_PER_CASE

    def omit(self, case_id: str) -> None:
        self.omitted[case_id] = self.omitted.get(case_id, 0) + 1

    def add(self, result: ExchangeResult) -> None:
        ex = result.exchange
        case = ex.case_id
        if case not in self.cases:
            self.cases[case] = (ex.dialect, ex.stream)
            body = ex.client_request.body if ex.client_request else None
            head = self.tpl_head.render(case_id=case, dialect=ex.dialect, stream=ex.stream,
                                        note=self.notes.get(case, {}).get("note", ""), client_body=elide(body))
            (self.parts / f"{case}.head").write_text(head, encoding="utf-8")
        if self.sections.get(case, 0) >= MAX_SECTIONS_PER_CASE:
            self.omitted[case] = self.omitted.get(case, 0) + 1
            return
        self.sections[case] = self.sections.get(case, 0) + 1
        upstream = [{
            "method": u.method, "path": u.path, "headers": u.headers, "status": u.response.status,
            "cut": u.response.cut, "body": elide(u.body_json) if u.body_is_json else elide(u.body_text),
            "answer": _answer(u), "frames": u.response.frames is not None, "count": len(u.response.frames or ()),
        } for u in ex.upstream_requests]
        cr = ex.client_response
        client_response: Any = None
        if cr is not None:
            if cr.frames is not None:
                client_response = elide([
                    ({"event": f.event} if f.event else {}) | {"data": f.json_data if f.json_data is not None else f.data}
                    for f in cr.frames])
            else:
                client_response = elide(cr.body if cr.body is not None else cr.text)
        text = self.tpl_ex.render(ex=ex, summary=result.summary, upstream=upstream, client_response=client_response,
                                  client_status=cr.status if cr else None, client_frames=bool(cr and cr.frames is not None), client_count=len(cr.frames or ()) if cr else 0,
                                  findings=result.findings)
        with (self.parts / f"{case}.body").open("a", encoding="utf-8") as fh:
            fh.write(text)

    def finish(self) -> list[Path]:
        tail_cache: dict[str, str] = {}
        schema = verdict_schema()
        written = []
        for case in sorted(self.cases):
            tail = tail_cache.get(case) or self.tpl_tail.render(case_id=case, schema=schema)
            target = self.out_dir / f"{case}.md"
            with target.open("w", encoding="utf-8") as out:
                out.write((self.parts / f"{case}.head").read_text(encoding="utf-8"))
                body = self.parts / f"{case}.body"
                if body.exists():
                    with body.open("r", encoding="utf-8") as fh:
                        shutil.copyfileobj(fh, out)
                if self.omitted.get(case):
                    out.write(f"({self.omitted[case]} more exchange(s) of this case omitted to keep the prompt "
                              f"readable; they are in findings.json.)\n\n")
                out.write(tail)
            written.append(target)
        shutil.rmtree(self.parts, ignore_errors=True)
        return written
