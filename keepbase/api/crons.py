"""/api/crons (superusers only): list the scheduled jobs and run one now, in the background."""

from __future__ import annotations

import threading

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.errors import NotFoundError
from ..ops.cron import Job
from .deps import app_of, require_superuser
from .responses import json_response, no_content

# built-in jobs: keepbase's own prefix, and PocketBase's for jobs registered under its names
SYSTEM_PREFIXES = ("__kb", "__pb")


def ordered(jobs: list[Job]) -> list[Job]:
    """PocketBase's order: the app's jobs by id, then the built-in ones (in the scheduler's order)."""
    own = sorted((j for j in jobs if not j.id.startswith(SYSTEM_PREFIXES)), key=lambda j: j.id)
    return own + [j for j in jobs if j.id.startswith(SYSTEM_PREFIXES)]


async def list_crons(request: Request) -> Response:
    await require_superuser(request)
    jobs = ordered(app_of(request).scheduler.jobs())
    return json_response([{"id": j.id, "expression": j.expression} for j in jobs],
                         request.query_params.get("fields", ""))


async def run_cron(request: Request) -> Response:
    await require_superuser(request)
    scheduler = app_of(request).scheduler
    job = next((j for j in scheduler.jobs() if j.id == request.path_params["id"]), None)
    if job is None:
        raise NotFoundError("Missing or invalid cron job.")
    # fire and forget, like PocketBase; failures are logged by the scheduler
    threading.Thread(target=scheduler.run_job, args=(job,), name=f"keepbase-cron-run-{job.id}", daemon=True).start()
    return no_content()


ROUTES = [
    Route("/api/crons", list_crons, methods=["GET"]),
    Route("/api/crons/{id}", run_cron, methods=["POST"]),
]
