"""HTTP views: HTML page, JSON API, file upload/download and health check."""

from __future__ import annotations

import hashlib
import html
import logging
import mimetypes
import os
import re
import tempfile
from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.request import Request
from pyramid.response import FileResponse, Response
from pyramid.view import exception_view_config, notfound_view_config, view_config
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from . import __version__
from .models import Link

log = logging.getLogger(__name__)

MAX_ID = 2**31 - 1
CHUNK = 64 * 1024
MULTIPART_SLACK = 64 * 1024


def json_error(status: int, message: str, **extra: Any) -> Response:
    """Return a JSON error response."""
    return Response(json={"error": message, **extra}, status=status)


def validate(url: Any, note: Any) -> tuple[str | None, str, str]:
    """Check submitted values; return (error or None, url, note)."""
    if not isinstance(url, str) or not url.strip():
        return "url is required", "", ""
    if note is None:
        note = ""
    if not isinstance(note, str):
        return "note must be a string", "", ""
    url = url.strip()
    if not url.lower().startswith(("http://", "https://")):
        return "url must start with http:// or https://", "", ""
    return None, url, note


def get_link(request: Request) -> Link | None:
    """Load the link named by the route's id, or None."""
    link_id = int(request.matchdict["id"])
    if link_id > MAX_ID:
        return None
    return request.dbsession.get(Link, link_id)


def safe_filename(name: str) -> str:
    """Reduce a client-supplied file name to a harmless basename."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).lstrip("._-")
    return name[:200] or "upload"


def link_dir(request: Request, link_id: int) -> str:
    """Return the upload directory of one link."""
    return os.path.join(request.registry.settings["links.upload_dir"], str(link_id))


def redact(message: str, request: Request) -> str:
    """Return the first line of an error message without the database password."""
    password = request.registry["dbengine"].url.password
    message = (message.strip().splitlines() or [""])[0]
    if password:
        message = message.replace(str(password), "***")
    return message[:200]


@view_config(route_name="health", request_method="GET")
def health(request: Request) -> Response:
    """Report database reachability and the applied schema revision."""
    try:
        with request.registry["dbengine"].connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception as exc:
        detail = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
        return Response(
            json={"status": "error", "database": redact(detail, request), "version": __version__},
            status=503,
        )
    if revision is None:
        return Response(
            json={"status": "error", "database": "no schema revision recorded", "version": __version__},
            status=503,
        )
    return Response(json={"status": "ok", "database": "ok", "schema_version": revision, "version": __version__})


@view_config(route_name="api_links", request_method="GET")
def api_list(request: Request) -> Response:
    """List all links, newest first."""
    links = request.dbsession.query(Link).order_by(Link.created_at.desc(), Link.id.desc()).all()
    return Response(json={"links": [link.as_dict() for link in links]})


@view_config(route_name="api_links", request_method="POST")
def api_create(request: Request) -> Response:
    """Create a link from a JSON body."""
    try:
        body = request.json_body
    except ValueError:
        return json_error(400, "body must be JSON")
    if not isinstance(body, dict):
        return json_error(400, "body must be a JSON object")
    error, url, note = validate(body.get("url"), body.get("note"))
    if error:
        return json_error(400, error)
    link = Link(url=url, note=note)
    request.dbsession.add(link)
    request.dbsession.flush()
    return Response(json=link.as_dict(), status=201)


@view_config(route_name="api_link", request_method="GET")
def api_get(request: Request) -> Response:
    """Return one link."""
    link = get_link(request)
    if link is None:
        return json_error(404, "link not found")
    return Response(json=link.as_dict())


@view_config(route_name="api_link_file", request_method="POST")
def api_upload(request: Request) -> Response:
    """Store the multipart ``file`` field as the link's file, replacing any previous one."""
    limit: int = request.registry.settings["links.max_upload_bytes"]
    link = get_link(request)
    if link is None:
        return json_error(404, "link not found")
    if request.content_length is not None and request.content_length > limit + MULTIPART_SLACK:
        return json_error(413, "file too large", max_upload_bytes=limit)
    if not request.content_type.startswith("multipart/form-data"):
        return json_error(400, "expected multipart/form-data")
    field = request.POST.get("file")
    if field is None or not hasattr(field, "file"):
        return json_error(400, "missing file field 'file'")
    name = safe_filename(field.filename or "")
    request.dbsession.refresh(link, with_for_update=True)
    directory = link_dir(request, link.id)
    os.makedirs(directory, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".upload-", delete=False) as tmp:
        try:
            while chunk := field.file.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise OverflowError
                digest.update(chunk)
                tmp.write(chunk)
        except BaseException as exc:
            tmp.close()
            os.unlink(tmp.name)
            if isinstance(exc, OverflowError):
                return json_error(413, "file too large", max_upload_bytes=limit)
            raise
    previous = link.file_name
    link.file_name, link.file_size, link.file_sha256 = name, size, digest.hexdigest()
    request.dbsession.flush()
    os.chmod(tmp.name, 0o640)
    os.replace(tmp.name, os.path.join(directory, name))
    if previous and previous != name:
        try:
            os.unlink(os.path.join(directory, previous))
        except FileNotFoundError:
            pass
    return Response(json={"filename": name, "size": size, "sha256": link.file_sha256}, status=201)


@view_config(route_name="api_link_file", request_method="GET")
def api_download(request: Request) -> Response:
    """Send the link's file."""
    link = get_link(request)
    if link is None or not link.file_name:
        return json_error(404, "file not found")
    path = os.path.join(link_dir(request, link.id), link.file_name)
    if not os.path.isfile(path):
        return json_error(404, "file not found")
    content_type = mimetypes.guess_type(link.file_name)[0] or "application/octet-stream"
    response = FileResponse(path, request=request, content_type=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{link.file_name}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def render_page(request: Request, error: str = "", url: str = "", note: str = "") -> str:
    """Render the home page: the form and the list of links."""
    esc = html.escape
    rows = []
    for link in request.dbsession.query(Link).order_by(Link.created_at.desc(), Link.id.desc()):
        file_part = ""
        if link.file_name:
            href = request.route_path("api_link_file", id=link.id)
            file_part = f' <a class="file" href="{esc(href)}">{esc(link.file_name)}</a> ({link.file_size} bytes)'
        created = link.created_at.strftime("%Y-%m-%d %H:%M") if link.created_at else ""
        rows.append(
            f'<li><a href="{esc(link.url)}" rel="noopener noreferrer nofollow">{esc(link.url)}</a>'
            f'<span class="note">{esc(link.note)}</span>'
            f'<span class="meta">#{link.id} {esc(created)}{file_part}</span></li>'
        )
    items = "\n".join(rows) or '<li class="empty">No links yet.</li>'
    error_html = f'<p class="error">{esc(error)}</p>' if error else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Links</title>
<link rel="stylesheet" href="{esc(request.static_path("links:static/style.css"))}">
</head>
<body>
<main>
<h1>Links</h1>
<form method="post" action="{esc(request.route_path("form_add"))}">
{error_html}
<label>URL <input type="url" name="url" required value="{esc(url)}" placeholder="https://example.org/"></label>
<label>Note <input type="text" name="note" value="{esc(note)}"></label>
<button type="submit">Save</button>
</form>
<ul class="links">
{items}
</ul>
<footer>phoenix-links {esc(__version__)}</footer>
</main>
</body>
</html>
"""


@view_config(route_name="home", request_method="GET")
def home(request: Request) -> Response:
    """Show the links and the form."""
    return Response(render_page(request), content_type="text/html", charset="utf-8")


@view_config(route_name="form_add", request_method="POST")
def form_add(request: Request) -> Response:
    """Add a link from the HTML form, then go back to the list."""
    raw_url, raw_note = request.POST.get("url", ""), request.POST.get("note", "")
    error, url, note = validate(raw_url, raw_note)
    if error:
        page = render_page(request, error, str(raw_url), str(raw_note))
        return Response(page, status=400, content_type="text/html", charset="utf-8")
    request.dbsession.add(Link(url=url, note=note))
    return HTTPSeeOther(location=request.route_url("home"))


def is_api(request: Request) -> bool:
    """Tell whether the request is for a JSON endpoint."""
    return request.path == "/api" or request.path.startswith(("/api/", "/health"))


@notfound_view_config()
def not_found(request: Request) -> Response:
    """Answer unknown paths with JSON under /api, plain text elsewhere."""
    if is_api(request):
        return json_error(404, "not found")
    return Response("Not found\n", status=404, content_type="text/plain", charset="utf-8")


@exception_view_config(OperationalError)
def database_unavailable(exc: OperationalError, request: Request) -> Response:
    """Log a lost or refused database connection and answer 503."""
    log.error("database error on %s %s", request.method, request.path, exc_info=request.exc_info)
    if is_api(request):
        return json_error(503, "database unavailable")
    return Response("Database unavailable\n", status=503, content_type="text/plain", charset="utf-8")
