"""The ASGI application for servers (``uvicorn nettrial.api.app:app``), configured from the settings."""

from nettrial.api.main import build_app

app = build_app()
