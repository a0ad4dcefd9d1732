"""The operators' web UI: server-rendered pages over the read models, mounted by the front end at /ui."""

from services.webui.app import close_ui, create_ui

__all__ = ["close_ui", "create_ui"]
