"""A custom IdentityProvider naming real users by token, as a shared team server would.

Loaded by the server under test (``--ServerApp.identity_provider_class``), so it is a plain
module: ``TOKENS`` maps a token to the user it authenticates.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User

TOKENS = {"alice-token": "alice", "bob-token": "bob", "openfoal-test-token": "carol"}


class TwoUsersIdentityProvider(IdentityProvider):
    """``Authorization: token <t>`` (or ``?token=<t>``) names the user of ``TOKENS[t]``."""

    def get_user(self, handler: Any) -> User | None:
        header = handler.request.headers.get("Authorization", "")
        token = header.removeprefix("token ").strip() or handler.get_argument("token", "")
        name = TOKENS.get(token)
        if name is None:
            return None
        handler._token_authenticated = True  # a token, like Jupyter's: no XSRF cookie needed
        return User(username=name)
