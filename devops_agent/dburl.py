"""DATABASE_URL, parsed once: which database it is, and how each client names it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class DatabaseUrl:
    """`sqlite[+aiosqlite]:///path`, `postgresql://...` (or `postgres://`, with or without a
    SQLAlchemy driver suffix), or `memory://` (a private in-memory SQLite, tests only)."""

    raw: str

    @property
    def kind(self) -> Literal["sqlite", "postgresql", "memory"]:
        if self.raw.startswith("memory://"):
            return "memory"
        if self.raw.startswith("sqlite"):
            return "sqlite"
        if self.raw.startswith(("postgresql", "postgres://")):
            return "postgresql"
        raise ValueError(f"DATABASE_URL: unsupported scheme {self.raw.split('://')[0]}://")

    @property
    def sqlite_path(self) -> str:
        """The file of a SQLite URL."""
        if self.kind != "sqlite" or ":///" not in self.raw:
            raise ValueError(f"not a SQLite file URL: {self.raw.split('://')[0]}://...")
        return self.raw.split(":///", 1)[1]

    @property
    def conninfo(self) -> str:
        """A libpq URL for psycopg (without a SQLAlchemy driver suffix such as +psycopg)."""
        return "postgresql://" + self.raw.split("://", 1)[1]

    @property
    def sqlalchemy(self) -> str:
        """The synchronous SQLAlchemy URL (`memory://`: a private in-memory SQLite)."""
        if self.kind == "memory":
            return "sqlite://"
        if self.kind == "sqlite":
            return "sqlite:///" + self.sqlite_path
        return "postgresql+psycopg://" + self.raw.split("://", 1)[1]
