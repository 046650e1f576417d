"""videogen: generate videos and images with hosted models from LLM agents, Discord and a CLI."""

__version__ = "0.1.0"
