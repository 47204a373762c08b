"""Who is asking: the principal that owns sessions, from Jupyter's identity."""

from __future__ import annotations

import getpass
import os
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider


def default_server_owner() -> str:
    """The owner of a single-user server: the Hub user it runs for, else the OS user."""
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()


def principal(user: Any, identity_provider: Any, server_owner: str) -> str:
    """Return the name sessions are owned by.

    Jupyter's default identity providers authenticate a shared token or password and make
    up a random anonymous user per browser: everyone holding the token is the server's
    owner, so they all map to ``server_owner``. Any other provider (JupyterHub's, a custom
    one) names real users, and its ``username`` is the principal.
    """
    if type(identity_provider) in (IdentityProvider, PasswordIdentityProvider):
        return server_owner
    return str(user.username)


def hub_groups(user: Any) -> list[str] | None:
    """The user's JupyterHub groups (``None`` off a Hub: no groups are known)."""
    model = getattr(user, "hub_user", None)
    if not isinstance(model, dict):
        return None
    return [str(g) for g in model.get("groups") or []]
