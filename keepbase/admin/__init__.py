"""The admin dashboard served at ``/_/``: static files (``static/``) and the ASGI wrapper serving them.

The dashboard is a plain client of the public HTTP API (superuser sign-in, collections, records);
``app.py`` puts ``with_dashboard`` in front of the API's ASGI app.
"""

from __future__ import annotations

from .dashboard import with_dashboard

__all__ = ["with_dashboard"]
