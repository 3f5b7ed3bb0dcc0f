"""The bench result file, ``output/bench/<UTC timestamp>.json``: defined once, here."""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class Figure(BaseModel):
    """One measured figure and whether it meets its goal (context figures have no goal and hold trivially)."""

    name: str
    value: float
    unit: str
    goal: str = Field("", description="human-readable goal, e.g. '<= 1.10'; empty for context figures")
    holds: bool = True
    note: str = ""


class Machine(BaseModel):
    python: str
    platform: str
    cpus: int
    memory_gib: float | None
    hostname: str


class BenchFile(BaseModel):
    started: datetime
    finished: datetime
    options: dict[str, Any] = Field(default_factory=dict)
    figures: list[Figure]
    skipped: list[str] = Field(default_factory=list, description="one line per figure that could not be measured")
    machine: Machine


def machine_info() -> Machine:
    mem: float | None = None
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        mem = round(pages * size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return Machine(python=sys.version.split()[0], platform=platform.platform(), cpus=os.cpu_count() or 1,
                   memory_gib=mem, hostname=platform.node())


def at_most(name: str, value: float, unit: str, limit: float, note: str = "") -> Figure:
    return Figure(name=name, value=round(value, 4), unit=unit, goal=f"<= {limit:g}", holds=value <= limit, note=note)


def at_least(name: str, value: float, unit: str, limit: float, note: str = "") -> Figure:
    return Figure(name=name, value=round(value, 4), unit=unit, goal=f">= {limit:g}", holds=value >= limit, note=note)


def info(name: str, value: float, unit: str, note: str = "") -> Figure:
    return Figure(name=name, value=round(value, 4), unit=unit, note=note)
