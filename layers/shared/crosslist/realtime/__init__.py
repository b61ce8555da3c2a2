"""Realtime: the users' WebSocket connections, plugin commands and their results, progress messages."""
