"""Database model."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Integer, Text, func
from sqlalchemy.orm import declarative_base

Base = declarative_base()


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

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON representation used by the API."""
        return {
            "id": self.id,
            "url": self.url,
            "note": self.note,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "has_file": self.file_name is not None,
        }
