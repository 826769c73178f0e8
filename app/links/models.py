"""Database model."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import BigInteger, Column, DateTime, Integer, Text, func
from sqlalchemy.orm import declarative_base

Base = declarative_base()


def domain_of(url: str) -> str:
    """Return the lower-case host name of a URL ("" when it has none)."""
    return (urlsplit(url).hostname or "").lower()


def _default_domain(context: Any) -> str:
    return domain_of(context.get_current_parameters()["url"])


class Link(Base):
    """A saved link, optionally with one attached file."""

    __tablename__ = "links"
    __mapper_args__ = {"eager_defaults": True}

    id = Column(Integer, primary_key=True)
    url = Column(Text, nullable=False)
    note = Column(Text, nullable=False, server_default="")
    created_at = Column(DateTime(timezone=True), server_default=func.now())
    file_name = Column(Text, nullable=True)
    file_size = Column(BigInteger, nullable=True)
    file_sha256 = Column(Text, nullable=True)
    # release 2.0.0; migration 0002 backfills it for links saved before
    domain = Column(Text, nullable=False, server_default="", default=_default_domain)

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON representation used by the API."""
        return {
            "id": self.id,
            "url": self.url,
            "note": self.note,
            "domain": self.domain,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "has_file": self.file_name is not None,
        }
