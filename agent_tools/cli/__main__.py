"""``python -m agent_tools.cli`` is ``videogen``, with nothing needed on PATH."""

from .main import main

raise SystemExit(main())
