"""Fixtures of the server tests: the wired run services (see ``runworld``)."""

from __future__ import annotations

from runworld import world

__all__ = ["world"]
