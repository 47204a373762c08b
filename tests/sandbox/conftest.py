"""Fixtures for the sandbox tests: a real Docker engine, the project's images, real containers.

No engine (or no images) fails the suite with a message saying which script to run; it is
never skipped.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest
import pytest_asyncio

from openfoal_kernel.sandbox.client.executor import DockerExecutor
from openfoal_kernel.sandbox.docker_api import endpoint_of
from openfoal_kernel.sandbox.handle import LABEL_INSTANCE, LABEL_SANDBOX, SandboxHandle
from openfoal_kernel.sandbox.host.manager import DEFAULT_IMAGE, SHELL_IMAGE
from openfoal_kernel.sandbox.host.mounts import WorkspaceMounts
from openfoal_kernel.sandbox.host.spec import PROXY_ENV, container_name, labels, sandbox_kwargs

#: Instance ids of the tests start with this, so the session can sweep what a test left.
TEST_INSTANCE_PREFIX = "pytest-"


#: The instance ids this test process made: the sweep removes their containers only, never
#: those of another test session running against the same engine at the same time.
_MADE_HERE: set[str] = set()


def new_instance_id() -> str:
    """A fresh server instance id for one test."""
    instance = f"{TEST_INSTANCE_PREFIX}{uuid.uuid4().hex[:8]}"
    _MADE_HERE.add(instance)
    return instance


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client of the running engine; fails the tests clearly when there is none."""
    try:
        info = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"Docker is not usable ({exc}); run scripts/install-docker.sh", pytrace=False)
    if info.returncode != 0:
        pytest.fail(
            "the Docker engine is not running (docker info failed: "
            f"{info.stderr.strip()[:300]}); run scripts/install-docker.sh",
            pytrace=False,
        )
    client = docker.from_env(timeout=60)
    for image in (DEFAULT_IMAGE, SHELL_IMAGE):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            pytest.fail(
                f"the sandbox image {image} is missing; run scripts/build-sandbox-images.sh",
                pytrace=False,
            )
    yield client
    # A safety net: remove whatever a failed test left behind.
    for container in client.containers.list(
        all=True, sparse=True, filters={"label": f"{LABEL_SANDBOX}=1"}
    ):
        instance = (container.attrs.get("Labels") or {}).get(LABEL_INSTANCE, "")
        if instance.startswith(TEST_INSTANCE_PREFIX) and instance in _MADE_HERE:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                client.api.remove_container(container.id, force=True)
    client.close()


@dataclass
class Sandbox:
    """A hardened sandbox container started directly from the manager's definition."""

    handle: SandboxHandle
    workspace: Path
    client: docker.DockerClient

    @property
    def container_id(self) -> str:
        """The container's id."""
        return self.handle.container_id


def start_sandbox(
    client: docker.DockerClient,
    workspace: Path,
    state_dir: Path,
    *,
    image: str = DEFAULT_IMAGE,
    memory: str = "256m",
    pids: int = 128,
    budget_s: float | None = None,
) -> tuple[Sandbox, WorkspaceMounts]:
    """Start one sandbox the way the manager does (same spec, mounts and handle)."""
    instance = new_instance_id()
    mounts = WorkspaceMounts(state_dir / "mounts")
    plan = mounts.plan(workspace)
    name = container_name(instance, "s_test")
    kwargs = sandbox_kwargs(
        image=image,
        name=name,
        user=plan.user,
        workspace_source=plan.source,
        memory=memory,
        cpus=1.0,
        pids=pids,
        tmpfs_size="32m",
        container_labels=labels(
            instance=instance,
            host="test",
            owner="tester",
            session="s_test",
            pool=False,
            role="sandbox",
        ),
    )
    container = client.containers.run(**kwargs)
    endpoint = endpoint_of(client)
    handle = SandboxHandle(
        container_id=container.id,
        name=name,
        session_id="s_test",
        owner="tester",
        docker_host=endpoint.docker_host,
        api_version=endpoint.api_version,
        user=plan.user,
        host_workspace=str(workspace),
        env=dict(PROXY_ENV),
        python="python3" if image == DEFAULT_IMAGE else None,
        memory=memory,
        budget_s=budget_s,
        ledger=str(state_dir / "ledger") if budget_s else None,
    )
    return Sandbox(handle, workspace, client), mounts


@pytest.fixture(scope="module")
def py_sandbox(
    docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    """One Python sandbox for the tests of a module (its workspace is root's, so mapped)."""
    base = tmp_path_factory.mktemp("sandbox")
    workspace = base / "ws"
    workspace.mkdir()
    sandbox, mounts = start_sandbox(docker_client, workspace.resolve(), base / "state")
    yield sandbox
    try:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_container(sandbox.container_id, force=True)
    finally:
        mounts.release()


@pytest_asyncio.fixture
async def executor(py_sandbox: Sandbox) -> AsyncIterator[DockerExecutor]:
    """A fresh executor on the module's sandbox (the REPL's variables are shared)."""
    ex = DockerExecutor(py_sandbox.handle)
    yield ex
    await ex.aclose()


def container_pids(client: docker.DockerClient, container_id: str) -> list[str]:
    """The command lines of the processes in a container (read by the engine, from outside)."""
    top = client.api.top(container_id, ps_args="-eo pid,args")
    return [row[-1] for row in top.get("Processes") or []]


@pytest.fixture
def instance_ids() -> Callable[[], str]:
    """:func:`new_instance_id`, for test modules (a conftest is not imported by name)."""
    return new_instance_id
