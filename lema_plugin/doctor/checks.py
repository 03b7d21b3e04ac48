"""What `lema doctor` reports: one line per check, and the GPUs a machine shows."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import LemaError


class DoctorFailed(LemaError):
    """A check failed: the message lists which."""


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail | skip
    detail: str

    def line(self) -> str:
        return f"{self.status.upper():4}  {self.name}: {self.detail}"


@dataclass
class Gpu:
    index: int
    name: str
    memory_mb: int


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: str, detail: str, echo=None) -> Check:
        check = Check(name, status, detail)
        self.checks.append(check)
        if echo:
            echo(check.line())
        return check

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]
