"""The dashboard: pages where an operator watches changes travel, at ``/dashboard/``.

Server-rendered pages (Jinja2 templates in this package) whose live parts a
small hand-written script refreshes when ``/dashboard/events`` (the event
stream, for the page's identity) says they changed; a job's graph is
re-coloured from task events directly. Every read and change goes through
central with the caller's scope, as the API's routes do. doc/dashboard.md
says what each page shows and why it is built this way.
"""

from __future__ import annotations

from fastapi import FastAPI

from zoneflow.dashboard import actions, pages, stream


def install(app: FastAPI) -> None:
    """Serve the dashboard's pages, actions, stream and static files from ``app``."""
    app.include_router(pages.router)
    app.include_router(actions.router)
    app.include_router(stream.router)
