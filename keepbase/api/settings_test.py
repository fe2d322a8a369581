"""POST /api/settings/test/email (superusers only): send one auth mail to an address."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .deps import app_of, read_body, require_superuser, run
from .responses import no_content


async def send_test_email(request: Request) -> Response:
    await require_superuser(request)
    app = app_of(request)
    body, _ = await read_body(request, app.config.max_body_size,
                              invalid_message="An error occurred while loading the submitted data.")
    await run(request, app.accounts.send_test_email, body)
    return no_content()


ROUTES = [Route("/api/settings/test/email", send_test_email, methods=["POST"])]
