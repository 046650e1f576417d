"""The web dashboard: a gallery of the account's clips, job pages, spend charts and the admin pages.

A surface like the MCP server: Starlette routes render Jinja2 templates from what the Toolkit returns;
every asset is served from ``static/`` (no CDN). ``create_app`` builds the ASGI app.
"""

from .app import create_app

__all__ = ["create_app"]
