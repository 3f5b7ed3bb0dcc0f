"""The JSON Schema of every file format, from its pydantic model (``gatewaylens schema NAME``).

The models are the definition; the schemas in ``docs/schemas/`` are generated from them
(``gatewaylens schema --out docs/schemas``) and a test keeps them equal.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class Format:
    name: str
    model: str  # module:Class
    file: str  # which file it describes
    written_by: str  # who writes it

    def model_class(self) -> type[BaseModel]:
        module, _, cls = self.model.partition(":")
        obj = getattr(importlib.import_module(module), cls)
        assert isinstance(obj, type) and issubclass(obj, BaseModel)
        return obj


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("corpus", "gatewaylens.capture.models:Corpus", "corpus.json, corpus.d/*.json (--corpus)", "you"),
    Format("gateways", "gatewaylens.capture.models:GatewaysFile", "--gateways-file FILE (JSON or YAML)", "you"),
    Format("run", "gatewaylens.capture.models:RunInfo", "<run>/run.json", "capture"),
    Format("exchange", "gatewaylens.capture.models:Exchange", "one line of <run>/exchanges.jsonl", "capture"),
    Format("findings", "gatewaylens.analyze.models:FindingsFile", "<run>/findings.json", "analyze"),
    Format("verdict", "gatewaylens.analyze.models:Verdict", "--verdicts DIR/*.json", "an AI reviewer"),
    Format("fixture", "gatewaylens.analyze.models:Fixture", "analyze fixtures --out DIR: <gateway>/<case>.<upstream>.json",
           "analyze fixtures"),
    Format("known-gaps", "gatewaylens.analyze.models:KnownGaps", "analyze check --known-gaps FILE (YAML or JSON)", "you"),
    Format("check-result", "gatewaylens.analyze.models:CheckResultFile", "analyze check --json (stdout)", "analyze check"),
    Format("mock-script", "gatewaylens.mock.models:Script", "POST /__mock/script body", "you (or capture)"),
    Format("mock-record", "gatewaylens.mock.models:RecordedExchange", "one line of mock --record-file FILE", "mock"),
)}


def schema_of(name: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of format ``name`` (a key of :data:`FORMATS`)."""
    fmt = FORMATS[name]
    schema = fmt.model_class().model_json_schema()
    own = " ".join(str(schema.get("description", "")).split())
    about = f"{fmt.file}, written by {fmt.written_by}." + (f" {own}" if own else "")
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": f"gatewaylens/{name}.schema.json", "description": about,
            **{k: v for k, v in schema.items() if k != "description"}}


def schema_text(name: str) -> str:
    return json.dumps(schema_of(name), indent=2, ensure_ascii=False) + "\n"
