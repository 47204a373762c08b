"""Model settings saved from the console: a 0600 JSON file in the owner's Jupyter config dir.

The key stays on the server: ``model.get`` answers ``hasKey`` and never the key itself.
Server config and environment win over the saved settings, field by field (docs/console.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from openfoal_kernel.protocol import ErrorCode, ModelSettings, OpenFoalError, utcnow
from openfoal_kernel.protocol.methods import ModelTestParams, ModelUpdateParams
from openfoal_kernel.protocol.results import (
    ModelGetResult,
    ModelTestError,
    ModelTestResult,
    SavedModel,
)
from openfoal_kernel.protocol.transcript import ChatMessage
from openfoal_kernel.providers.base import ModelError, TextDelta
from openfoal_kernel.providers.config import build_provider

from .audit import AuditService
from .context import RequestContext

#: Seconds one ``model.test`` call may take.
TEST_TIMEOUT_S = 30.0


class StoredModel(BaseModel):
    """The file's content (the key included: the file is readable by its owner only)."""

    model_config = ConfigDict(extra="ignore")
    provider: str
    model: str
    baseUrl: str | None = None
    apiKey: str | None = None
    updatedAt: str | None = None
    updatedBy: str | None = None

    def model_id(self) -> str:
        """``provider:model`` (bare ``demo`` for the demo)."""
        return "demo" if self.provider == "demo" else f"{self.provider}:{self.model}"

    def view(self) -> SavedModel:
        """The settings as clients see them: ``hasKey`` instead of the key."""
        return SavedModel.model_validate(
            {
                "provider": self.provider,
                "model": self.model,
                "baseUrl": self.baseUrl,
                "hasKey": bool(self.apiKey),
                "updatedAt": self.updatedAt,
                "updatedBy": self.updatedBy,
            }
        )

    def fill(self, settings: ModelSettings) -> ModelSettings:
        """``settings`` with this model and its URL and key where they are unset."""
        update: dict[str, Any] = {}
        if not settings.model:
            update["model"] = self.model_id()
        if self.provider == "openai":
            update["openaiApiKey"] = settings.openaiApiKey or self.apiKey
            update["openaiBaseUrl"] = settings.openaiBaseUrl or self.baseUrl
        elif self.provider == "anthropic":
            update["anthropicApiKey"] = settings.anthropicApiKey or self.apiKey
            update["anthropicBaseUrl"] = settings.anthropicBaseUrl or self.baseUrl
        return settings.model_copy(update=update)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically to a file only its owner can read (0600, folder 0700)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".model-", suffix=".json")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


@dataclass(kw_only=True)
class ModelConfigService:
    """``model.get`` / ``model.update`` / ``model.test`` over the saved settings file."""

    path: Path
    server_owner: str
    audit: AuditService
    #: The run settings from server config and environment alone (nothing saved applied).
    configured: Callable[[], ModelSettings]

    def __post_init__(self) -> None:
        self._saved = self._load()
        self._lock = asyncio.Lock()

    def _load(self) -> StoredModel | None:
        try:
            return StoredModel.model_validate_json(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValidationError, ValueError):
            # an unreadable file leaves the server without saved settings; it is not
            # overwritten until the owner saves again
            return None

    @property
    def saved(self) -> StoredModel | None:
        """The saved settings, if any."""
        return self._saved

    def apply(self, settings: ModelSettings) -> ModelSettings:
        """The run settings: config/environment first, the saved settings filling the rest."""
        return settings if self._saved is None else self._saved.fill(settings)

    def _require_owner(self, ctx: RequestContext) -> None:
        if ctx.user != self.server_owner:
            raise OpenFoalError(
                ErrorCode.FORBIDDEN, "only the server's owner may change or test its model"
            )

    def get(self, ctx: RequestContext) -> ModelGetResult:
        """``model.get``."""
        configured = self.configured().model
        active = self.apply(self.configured()).model
        source = "config" if configured else ("saved" if active else "none")
        return ModelGetResult.model_validate(
            {
                "saved": self._saved.view() if self._saved else None,
                "active": active,
                "source": source,
                "canEdit": ctx.user == self.server_owner,
            }
        )

    async def update(self, ctx: RequestContext, p: ModelUpdateParams) -> ModelGetResult:
        """``model.update``: save, keeping the saved key unless a new one comes or it is cleared."""
        self._require_owner(ctx)
        async with self._lock:
            old = self._saved
            key = p.apiKey
            if key is None and not p.clearKey and old is not None and old.provider == p.provider:
                key = old.apiKey
            if p.clearKey:
                key = None
            stored = StoredModel(
                provider=p.provider,
                model="demo" if p.provider == "demo" else p.model,
                baseUrl=p.baseUrl,
                apiKey=key,
                updatedAt=utcnow().isoformat().replace("+00:00", "Z"),
                updatedBy=ctx.user,
            )
            text = json.dumps(stored.model_dump(), indent=2)
            await asyncio.to_thread(_write_private, self.path, text)
            self._saved = stored
        await self.audit.record_now(
            actor=ctx.user,
            action="model.update",
            resource=f"model:{stored.model_id()}",
            trace_id=ctx.trace_id,
            owner=ctx.user,
            detail={
                "provider": stored.provider,
                "model": stored.model,
                "baseUrl": stored.baseUrl,
                "keyChanged": p.apiKey is not None or p.clearKey,
            },
        )
        return self.get(ctx)

    def _test_settings(self, p: ModelTestParams) -> tuple[str, ModelSettings]:
        saved = self._saved
        provider = p.provider or (saved.provider if saved else None)
        if provider is None:
            raise OpenFoalError(
                ErrorCode.INVALID_REQUEST, "nothing to test: give a provider and a model"
            )
        same = saved is not None and saved.provider == provider
        model = p.model or (saved.model if same and saved else None)
        if provider != "demo" and not model:
            raise OpenFoalError(ErrorCode.INVALID_REQUEST, "model.test needs a model id")
        stored = StoredModel(
            provider=provider,
            model=model or "demo",
            baseUrl=p.baseUrl or (saved.baseUrl if same and saved else None),
            apiKey=p.apiKey or (saved.apiKey if same and saved else None),
        )
        base = ModelSettings(timeoutSec=TEST_TIMEOUT_S, maxRetries=0)
        return stored.model_id(), stored.fill(base)

    async def test(self, ctx: RequestContext, p: ModelTestParams) -> ModelTestResult:
        """``model.test``: one short completion; ``ok: false`` with the reason when it fails."""
        self._require_owner(ctx)
        model_id, settings = self._test_settings(p)
        started = time.monotonic()
        reply = ""
        try:
            chain = build_provider(settings)
            try:
                messages = [ChatMessage(role="user", content="Reply with the word: ok")]
                async with asyncio.timeout(TEST_TIMEOUT_S):
                    async for event in chain.stream(messages, max_output_tokens=16):
                        if isinstance(event, TextDelta):
                            reply += event.text
            finally:
                await chain.aclose()
        except ModelError as exc:
            return self._failed(model_id, started, str(exc), exc.status)
        except TimeoutError:
            return self._failed(model_id, started, f"no answer within {TEST_TIMEOUT_S:.0f}s", None)
        return ModelTestResult(
            ok=True, model=model_id, latencyMs=_ms(started), reply=reply[:200] or None
        )

    @staticmethod
    def _failed(model_id: str, started: float, message: str, status: int | None) -> ModelTestResult:
        return ModelTestResult(
            ok=False,
            model=model_id,
            latencyMs=_ms(started),
            error=ModelTestError(
                code=ErrorCode.MODEL_UNAVAILABLE.value, message=message, status=status
            ),
        )


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
