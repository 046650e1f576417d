"""The MCP surface: ``server`` (the agent tool sets over stdio or streamable HTTP), ``render``
(small image previews) and ``claude_desktop`` (the Claude Desktop config entry). It imports the
Toolkit and the core below it (``agent`` for the tools), never the CLI or the bot.
"""
