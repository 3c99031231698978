"""Errors a user can cause; the CLI and the UI turn them into one clear line.

The hierarchy lives on the ground floor (`storage.errors`, which storage raises too); the engine's modules and its
callers import it from here."""
from __future__ import annotations

from storage.errors import Cancelled, EmbedLabError, InputError, UserError

__all__ = ["Cancelled", "EmbedLabError", "InputError", "UserError"]
