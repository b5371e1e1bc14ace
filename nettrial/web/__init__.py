"""The web interface for the study team: server-rendered pages on the same service and store."""
