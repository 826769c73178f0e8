"""Phoenix links: save links and attach one file to each."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from sqlalchemy import engine_from_config
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

__version__ = "2.0.0"

DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024


def _required(settings: dict[str, Any], key: str) -> str:
    """Return a non-empty setting or fail with a clear message."""
    value = str(settings.get(key, "")).strip()
    if not value:
        raise ValueError(f"missing required setting {key!r}")
    return value


def make_engine(settings: dict[str, Any]) -> Engine:
    """Build the SQLAlchemy engine from the ``sqlalchemy.*`` settings."""
    url = _required(settings, "sqlalchemy.url")
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        kwargs["connect_args"] = {"connect_timeout": 5}
    return engine_from_config({**settings, "sqlalchemy.url": url}, "sqlalchemy.", **kwargs)


def _dbsession(request: Request) -> Session:
    """Open the request's session; the tween commits or rolls it back."""
    factory: sessionmaker = request.registry["dbsession_factory"]
    return factory()


def db_tween_factory(handler: Callable[[Request], Response], registry: Any) -> Callable[[Request], Response]:
    """Commit the request's session on success, roll back otherwise, always close it."""

    def tween(request: Request) -> Response:
        try:
            response = handler(request)
        except BaseException:
            session = request.__dict__.get("dbsession")
            if session is not None:
                session.rollback()
                session.close()
            raise
        session = request.__dict__.get("dbsession")
        if session is not None:
            try:
                if request.exception is None and response.status_code < 400:
                    session.commit()
                else:
                    session.rollback()
            finally:
                session.close()
        return response

    return tween


def main(global_config: dict[str, Any], **settings: Any) -> Any:
    """Return the WSGI application (PasteDeploy ``paste.app_factory``)."""
    upload_dir = os.path.abspath(_required(settings, "links.upload_dir"))
    os.makedirs(upload_dir, exist_ok=True)
    settings["links.upload_dir"] = upload_dir
    settings["links.max_upload_bytes"] = int(settings.get("links.max_upload_bytes") or DEFAULT_MAX_UPLOAD_BYTES)
    engine = make_engine(settings)
    with Configurator(settings=settings) as config:
        config.registry["dbengine"] = engine
        config.registry["dbsession_factory"] = sessionmaker(bind=engine)
        config.add_request_method(_dbsession, "dbsession", reify=True)
        config.add_tween("links.db_tween_factory")
        config.add_static_view("static", "links:static", cache_max_age=3600)
        config.add_route("home", "/")
        config.add_route("form_add", "/links")
        config.add_route("health", "/health")
        config.add_route("api_links", "/api/links")
        config.add_route("api_link", r"/api/links/{id:\d+}")
        config.add_route("api_link_file", r"/api/links/{id:\d+}/file")
        config.scan(".views")
        return config.make_wsgi_app()
