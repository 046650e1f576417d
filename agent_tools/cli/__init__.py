"""The ``videogen`` command: the parser, the per-model options generated from the catalog, and one
module per command group. A command module only parses, calls the Toolkit (or starts a surface:
``mcp`` runs ``agent_tools.mcp_server``, ``discord`` runs ``bots.discord``) and renders.
It is the top of the import graph: it may import every other package, and none imports it.
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
