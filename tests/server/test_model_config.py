"""The saved model settings service: only the server's owner changes or tests them."""

from __future__ import annotations

from pathlib import Path

import pytest
from runworld import World

from openfoal_kernel.protocol import ErrorCode, ModelSettings, OpenFoalError
from openfoal_kernel.protocol.methods import ModelTestParams, ModelUpdateParams
from openfoal_server_ext.services.context import RequestContext
from openfoal_server_ext.services.model_config import ModelConfigService

pytestmark = pytest.mark.asyncio


def _service(world: World, path: Path) -> ModelConfigService:
    return ModelConfigService(
        path=path, server_owner="alice", audit=world.audit, configured=ModelSettings
    )


async def test_only_the_owner_changes_or_tests_the_model(world: World, tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "openfoal" / "model.json"
    models = _service(world, path)
    bob = RequestContext(user="bob", trace_id="t" * 32)
    update = ModelUpdateParams(
        idempotencyKey="k", provider="openai", model="gpt-x", apiKey="sk-bob"
    )
    with pytest.raises(OpenFoalError) as refused:
        await models.update(bob, update)
    assert refused.value.code is ErrorCode.FORBIDDEN
    with pytest.raises(OpenFoalError) as refused_test:
        await models.test(bob, ModelTestParams(provider="demo"))
    assert refused_test.value.code is ErrorCode.FORBIDDEN
    assert not path.exists()
    assert models.get(bob).canEdit is False and models.get(bob).saved is None

    alice = RequestContext(user="alice", trace_id="a" * 32)
    got = await models.update(alice, update)
    assert got.canEdit and got.saved is not None and got.saved.hasKey
    # a server started later reads the same file back
    again = _service(world, path)
    assert again.saved is not None and again.saved.apiKey == "sk-bob"
    assert again.apply(ModelSettings()).openaiApiKey == "sk-bob"


async def test_a_broken_file_means_nothing_saved(world: World, tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    path.write_text("{not json")
    models = _service(world, path)
    assert models.saved is None
    assert models.apply(ModelSettings()).model is None
    assert path.read_text() == "{not json"  # kept until the owner saves again
