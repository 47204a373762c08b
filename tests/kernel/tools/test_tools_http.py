"""http.request and its address guard, against real servers on loopback."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tool_http_servers import CountingServer, serve

from openfoal_kernel.tools.base import ToolContext
from openfoal_kernel.tools.http import HttpRequestTool
from openfoal_kernel.tools.netguard import (
    IPAddress,
    Resolver,
    blocked_reason,
    canonical_host,
    host_allowed,
    parse_url,
)


@pytest.fixture
def server() -> Iterator[CountingServer]:
    """The server the tests open through the allowlist."""
    with serve() as s:
        yield s


@pytest.fixture
def canary() -> Iterator[CountingServer]:
    """A server no request may reach: it counts every connection."""
    with serve() as s:
        yield s


@pytest.fixture
def canary6() -> Iterator[CountingServer | None]:
    """The same on [::1], where the machine has IPv6 loopback."""
    try:
        cm = serve("::1", socket.AF_INET6)
        s = cm.__enter__()
    except OSError:
        yield None  # no IPv6 loopback here: the [::1] URLs are still checked for refusal
        return
    try:
        yield s
    finally:
        cm.__exit__(None, None, None)


def _port(s: CountingServer) -> int:
    return int(s.server_address[1])


def _resolver(table: dict[str, list[str]]) -> Resolver:
    """A DNS stand-in: names the system resolver cannot know (``*.test``)."""

    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in table[host]]

    return resolve


def ssrf_cases(p: int) -> list[tuple[str, str]]:
    """(url, expected error code): every one must be refused before any connection."""
    denied, invalid = "POLICY_DENIED", "INVALID_REQUEST"
    return [
        (f"http://127.0.0.1:{p}/hello", denied),
        (f"http://localhost:{p}/hello", denied),
        (f"HTTP://LOCALHOST.:{p}/hello", denied),
        (f"http://2130706433:{p}/hello", denied),  # decimal
        (f"http://0x7f000001:{p}/hello", denied),  # hex
        (f"http://0x7f.0x0.0x0.0x1:{p}/hello", denied),  # dotted hex
        (f"http://017700000001:{p}/hello", denied),  # octal
        (f"http://0177.0.0.1:{p}/hello", invalid),  # dotted octal: not even a valid URL
        (f"http://127.1:{p}/hello", denied),  # short form
        (f"http://%31%32%37.0.0.1:{p}/hello", denied),  # percent-encoded host
        (f"http://127.0.0.1.:{p}/hello", denied),  # trailing dot
        (f"http://[::ffff:127.0.0.1]:{p}/hello", denied),  # IPv4-mapped IPv6
        (f"http://[::1]:{p}/hello", denied),
        (f"http://[64:ff9b::7f00:1]:{p}/hello", denied),  # NAT64
        ("http://[2002:7f00:1::]/", denied),  # 6to4
        (f"http://0.0.0.0:{p}/hello", denied),
        (f"http://0:{p}/hello", denied),
        (f"http://[::]:{p}/hello", denied),
        ("http://10.0.0.1/", denied),
        ("http://172.16.5.4/", denied),
        ("http://192.168.1.1/", denied),
        ("http://100.64.0.1/", denied),  # carrier-grade NAT
        ("http://169.254.169.254/latest/meta-data/", denied),
        ("http://[::ffff:a9fe:a9fe]/latest/meta-data/", denied),
        ("http://[fd00:ec2::254]/latest/meta-data/", denied),
        ("http://metadata.google.internal/computeMetadata/v1/", denied),
        ("http://[fe80::1]/", denied),
        ("http://[fc00::1]/", denied),
        ("http://224.0.0.1/", denied),
        ("http://[ff02::1]/", denied),
        ("http://240.0.0.1/", denied),
        ("http://255.255.255.255/", denied),
        (f"http://example.com@127.0.0.1:{p}/hello", denied),  # userinfo trick
        (f"http://example.com:80@127.0.0.1:{p}/hello", denied),
        (f"http://127.0.0.1:{p}#@example.com/", denied),
        (f"http://example.com\\@127.0.0.1:{p}/hello", denied),
        ("file:///etc/passwd", invalid),
        ("ftp://example.com/", invalid),
        (f"gopher://127.0.0.1:{p}/_GET", invalid),
        ("data:text/plain,hello", invalid),
        (f"dict://127.0.0.1:{p}/", invalid),
        ("http:///etc/passwd", invalid),
    ]


@pytest.mark.asyncio
async def test_ssrf_table_all_refused(
    canary: CountingServer,
    canary6: CountingServer | None,
    make_ctx: Callable[..., ToolContext],
) -> None:
    p = _port(canary)
    cases = ssrf_cases(p)
    if canary6 is not None:
        cases.append((f"http://[::1]:{_port(canary6)}/hello", "POLICY_DENIED"))
    assert len(cases) >= 25
    tool, ctx = HttpRequestTool(), make_ctx(network={"allow": ["api.example.com"]})
    for url, code in cases:
        res = await tool.invoke({"url": url}, ctx)
        assert res.error is not None and res.error["code"] == code, (url, res)
        assert res.status == ("denied" if code == "POLICY_DENIED" else "failed"), url
        assert "hello host=" not in res.output, url
    assert canary.hits == 0
    assert canary6 is None or canary6.hits == 0


@pytest.mark.asyncio
async def test_allowlisted_local_server(
    server: CountingServer, canary: CountingServer, make_ctx: Callable[..., ToolContext]
) -> None:
    p = _port(server)
    ctx = make_ctx(network={"allow": [f"127.0.0.1:{p}"]})
    tool = HttpRequestTool()
    res = await tool.invoke({"url": f"http://127.0.0.1:{p}/hello"}, ctx)
    assert res.status == "success", res
    assert res.output.startswith("HTTP 200 OK\n")
    assert res.output.endswith(f"\n\nhello host=127.0.0.1:{p}")
    assert tool.risk(tool.Args(url=f"http://127.0.0.1:{p}/hello"), ctx) is None
    # The allowlist entry names one port and one spelling of the host.
    for url in (f"http://127.0.0.1:{_port(canary)}/hello", f"http://localhost:{p}/hello"):
        res = await tool.invoke({"url": url}, ctx)
        assert res.error is not None and res.error["code"] == "POLICY_DENIED", url
        assert tool.risk(tool.Args(url=url), ctx) is not None
    assert canary.hits == 0


@pytest.mark.asyncio
async def test_methods_body_caps_and_timeout(
    server: CountingServer, make_ctx: Callable[..., ToolContext]
) -> None:
    base = f"http://127.0.0.1:{_port(server)}"
    ctx = make_ctx(network={"allow": [f"127.0.0.1:{_port(server)}"]})
    tool = HttpRequestTool()
    args = {"url": f"{base}/echo", "method": "POST", "body": "data", "headers": {"X-A": "1"}}
    res = await tool.invoke(args, ctx)
    assert res.output.endswith("POST body=data auth=-")
    reason = tool.risk(tool.Args.model_validate(args), ctx)
    assert reason == "sends a request body"

    res = await tool.invoke({"url": f"{base}/big"}, ctx)
    body = res.output.split("\n\n", 1)[1]
    assert body == "b" * 65536 + "\n[body truncated at 65536 bytes]"
    res = await tool.invoke({"url": f"{base}/big", "max_bytes": 1000}, ctx)
    assert res.output.endswith("b" * 1000 + "\n[body truncated at 1000 bytes]")
    res = await tool.invoke({"url": f"{base}/gzip", "max_bytes": 5000}, ctx)
    assert res.output.endswith("\n\n" + "0" * 5000 + "\n[body truncated at 5000 bytes]")

    res = await tool.invoke({"url": f"{base}/slow", "timeout_s": 0.5}, ctx)
    assert res.status == "timeout" and res.error is not None
    assert res.error["code"] == "TOOL_TIMEOUT"
    assert res.duration_ms < 2500


@pytest.mark.asyncio
async def test_redirects_are_rechecked(
    server: CountingServer, canary: CountingServer, make_ctx: Callable[..., ToolContext]
) -> None:
    p = _port(server)
    base = f"http://127.0.0.1:{p}"
    tool = HttpRequestTool(
        resolver=_resolver({"public.test": ["93.184.216.34"], "other.test": ["127.0.0.1"]})
    )
    ctx = make_ctx(network={"allow": [f"127.0.0.1:{p}", f"other.test:{p}"]})
    refused = {
        f"http://127.0.0.1:{_port(canary)}/hello": "POLICY_DENIED",
        "http://169.254.169.254/latest/meta-data/": "POLICY_DENIED",
        "http://10.0.0.1/admin": "POLICY_DENIED",
        "http://[::1]/": "POLICY_DENIED",
        "http://public.test/": "POLICY_DENIED",  # allowlisted start may not leave the list
        "file:///etc/passwd": "INVALID_REQUEST",
    }
    for to, code in refused.items():
        for status in (301, 302, 303, 307, 308):
            url = f"{base}/redirect?code={status}&to={to}"
            res = await tool.invoke({"url": url}, ctx)
            assert res.error is not None and res.error["code"] == code, (to, status, res)
    assert canary.hits == 0

    res = await tool.invoke({"url": f"{base}/hop/3"}, ctx)
    assert res.status == "success" and res.output.endswith("\n\nlanded")
    assert (
        f"[redirected: {base}/hop/3 -> {base}/hop/2 -> {base}/hop/1 -> {base}/hop/0]" in res.output
    )
    res = await tool.invoke({"url": f"{base}/hop/6"}, ctx)
    assert res.status == "failed" and "more than 5 redirects" in res.output
    res = await tool.invoke({"url": f"{base}/hop/6", "follow_redirects": False}, ctx)
    assert res.output.startswith("HTTP 302 Found\n")

    post = {"method": "POST", "body": "data", "headers": {"Authorization": "Bearer t"}}
    res = await tool.invoke({"url": f"{base}/redirect?code=303&to=/echo", **post}, ctx)
    assert res.output.endswith("GET body= auth=Bearer t")
    res = await tool.invoke({"url": f"{base}/redirect?code=307&to=/echo", **post}, ctx)
    assert res.output.endswith("POST body=data auth=Bearer t")
    # Credentials do not follow a redirect to another origin.
    to = f"http://other.test:{p}/echo"
    res = await tool.invoke({"url": f"{base}/redirect?code=307&to={to}", **post}, ctx)
    assert res.output.endswith("POST body=data auth=-")


@pytest.mark.asyncio
async def test_connects_to_the_checked_address(
    server: CountingServer, make_ctx: Callable[..., ToolContext]
) -> None:
    """The name is resolved once; the connection goes to that address, naming the host."""
    p = _port(server)
    tool = HttpRequestTool(
        resolver=_resolver(
            {"app.test": ["127.0.0.1"], "mixed.test": ["93.184.216.34", "127.0.0.1"]}
        )
    )
    ctx = make_ctx(network={"allow": [f"app.test:{p}"]})
    # The system resolver does not know app.test: only the checked address can be used.
    res = await tool.invoke({"url": f"http://app.test:{p}/hello"}, ctx)
    assert res.status == "success" and res.output.endswith(f"hello host=app.test:{p}")
    res = await tool.invoke({"url": f"http://mixed.test:{p}/hello", "headers": {"Host": "x"}}, ctx)
    assert res.error is not None and res.error["code"] == "POLICY_DENIED"
    assert "resolves to 127.0.0.1" in res.output


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``app.test`` and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-subj", "/CN=app.test", "-addext", "subjectAltName=DNS:app.test",
         "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.asyncio
async def test_https_pins_address_and_verifies_the_name(
    tls_files: tuple[Path, Path], make_ctx: Callable[..., ToolContext]
) -> None:
    cert, key = tls_files
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    with serve(tls=server_tls) as s:
        p = _port(s)
        tool = HttpRequestTool(
            resolver=_resolver({"app.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}),
            ssl_context=client_tls,
        )
        ctx = make_ctx(network={"allow": [f"app.test:{p}", f"other.test:{p}"]})
        res = await tool.invoke({"url": f"https://app.test:{p}/hello"}, ctx)
        assert res.status == "success", res
        assert res.output.endswith(f"hello host=app.test:{p}")
        # Same address, another name: the certificate is checked against the name, not the IP.
        res = await tool.invoke({"url": f"https://other.test:{p}/hello"}, ctx)
        assert res.status == "failed" and res.error is not None
        assert res.error["code"] == "TOOL_EXEC_FAILED" and "certificate" in res.output.lower(), (
            res.output
        )


def test_guard_units() -> None:
    assert canonical_host("0x7F.1") == "127.0.0.1"
    assert canonical_host("[::FFFF:7f00:1]") == "::ffff:7f00:1"
    assert parse_url("http://Bücher.example./x")[1:] == ("xn--bcher-kva.example", 80)
    assert parse_url("https://[::1]/")[1:] == ("::1", 443)
    for public in ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "93.184.216.34"):
        assert blocked_reason(ipaddress.ip_address(public)) is None, public
    patterns = ["api.example.com", "*.example.org", "localhost:8080", "[::1]:9000"]
    assert host_allowed("api.example.com", 443, patterns)
    assert host_allowed("a.b.example.org", 80, patterns)
    assert not host_allowed("example.org", 80, patterns)  # the wildcard needs a subdomain
    assert not host_allowed("evilexample.org", 80, patterns)
    assert not host_allowed("api.example.com.evil.net", 80, patterns)
    assert host_allowed("localhost", 8080, patterns)
    assert not host_allowed("localhost", 8081, patterns)
    assert host_allowed("::1", 9000, patterns)
