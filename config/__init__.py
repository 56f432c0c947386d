"""The service's settings: `Settings`, each one described once, in its section's model."""

from config.settings import Settings

__all__ = ["Settings"]
