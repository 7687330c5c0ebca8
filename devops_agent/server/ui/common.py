"""What the console's pages share: templates, who is looking, sessions and CSRF, headers.

Pages are server-rendered (Jinja2, autoescaped) and need no script to work; one small script
from the package (static/console.js) makes a run's timeline live. No CDN, nothing fetched at
run time: the Content-Security-Policy allows only this origin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from devops_agent.memory.users import User
from devops_agent.server.auth import SESSION_SCOPE, user_of
from devops_agent.server.sessions import MAX_AGE, Session, Sessions, cookie_header

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
MAX_FORM = 64 * 1024  # bytes of a form body
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def sessions_of(request: Request) -> Sessions:
    found: Sessions = request.app.state.sessions
    return found


def session_of(request: Request) -> Session | None:
    found = request.scope.get(SESSION_SCOPE)
    return found if isinstance(found, Session) else None


def nonce_of(request: Request, user: User | None) -> str | None:
    """What the page's CSRF token is bound to: the session, or the proxy's or token's user."""
    session = session_of(request)
    if session is not None:
        return session.nonce
    if user is not None and user.source in ("proxy", "token", "api_token"):
        return f"{user.source}:{user.name}"
    return None


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def page(
    request: Request,
    template: str,
    status: int = 200,
    user: User | None = None,
    set_cookie: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """A rendered page with the CSRF token of its forms and the console's headers."""
    user = user or user_of(request.scope)
    nonce = context.pop("nonce", None) or nonce_of(request, user)
    sessions = sessions_of(request)
    csrf = sessions.csrf(nonce) if nonce and sessions.enabled else ""
    html = env.get_template(template).render(user=user, csrf=csrf, request=request, **context)
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    if set_cookie is not None:
        response.headers.append("set-cookie", cookie_header(set_cookie, secure(request)).decode())
    return response


def redirect(url: str, set_cookie: str | None = None, request: Request | None = None) -> Response:
    response = RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)
    if set_cookie is not None and request is not None:
        max_age = MAX_AGE if set_cookie else 0
        header = cookie_header(set_cookie, secure(request), max_age).decode()
        response.headers.append("set-cookie", header)
    return response


async def form_of(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (first value of each field)."""
    body = await request.body()
    if len(body) > MAX_FORM:
        return {}
    try:
        parsed = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {key: values[0] for key, values in parsed.items() if values}


def csrf_ok(request: Request, form: dict[str, str], user: User | None) -> bool:
    """Whether the form carries this session's CSRF token."""
    nonce = nonce_of(request, user)
    return nonce is not None and sessions_of(request).csrf_ok(nonce, form.get("csrf"))


def refused(request: Request, status: int, message: str) -> HTMLResponse:
    return page(request, "error.html", status=status, message=message)
