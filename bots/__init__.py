"""Chat surfaces built on the agent_tools Toolkit."""
