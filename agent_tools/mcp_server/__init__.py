"""The MCP surface: ``server`` (every catalog model as a tool over stdio or streamable HTTP),
``render`` (results, budgets and previews as an LLM reads them) and ``claude_desktop`` (the
Claude Desktop config entry). It imports the Toolkit and the core below it, never the CLI or the bot.
"""
