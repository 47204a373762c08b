"""The policy in force, published by the gateway for turns that do not come through it.

A notebook cell run in an OpenFoal kernel is a turn without a gateway RunSpec, so it carries
no policy snapshot. The gateway writes its current ``default`` policy to a file outside the
workspace (in Jupyter's runtime folder, out of the file tools' reach) and names it in
``OPENFOAL_POLICY_FILE``, which kernels inherit; a notebook turn reads it when it starts.
Without a readable file the built-in default applies (high-risk calls gated).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from pydantic import ValidationError

from ..protocol import Policy

__all__ = ["POLICY_FILE_ENV", "publish_policy", "published_policy"]

log = logging.getLogger(__name__)

#: Environment variable naming the published policy file.
POLICY_FILE_ENV = "OPENFOAL_POLICY_FILE"


def publish_policy(path: Path, policy: Policy) -> None:
    """Write ``policy`` to ``path`` atomically (readers see the old or the new one, whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".policy-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(policy.model_dump_json())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def published_policy() -> Policy:
    """The policy the gateway published, or the built-in default when there is none."""
    name = os.environ.get(POLICY_FILE_ENV, "").strip()
    if not name:
        return Policy()
    try:
        return Policy.model_validate_json(Path(name).read_text("utf-8"))
    except FileNotFoundError:
        return Policy()
    except (OSError, ValidationError) as exc:
        log.warning("OpenFoal: cannot read the policy file %s (%s); using the default", name, exc)
        return Policy()
