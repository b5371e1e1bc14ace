"""A study protocol as a validated data file (``protocols/``)."""

from nettrial.protocol.load import load_protocol
from nettrial.protocol.model import Protocol

__all__ = ["Protocol", "load_protocol"]
