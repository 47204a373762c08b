"""``python -m openfoal_kernel.scripted --port N [--demo]``: run the scripted model server."""

from __future__ import annotations

import argparse
import signal
import threading

from .demo import demo_responder
from .server import ScriptedModelServer


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted; prints the base URLs on one line each."""
    parser = argparse.ArgumentParser(
        prog="python -m openfoal_kernel.scripted",
        description="Scripted model server speaking the OpenAI and Anthropic HTTP APIs.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0: any free port)")
    parser.add_argument("--api-key", default=None, help="key clients must send (none: any)")
    parser.add_argument(
        "--demo", action="store_true", help="answer with the demo model instead of an echo"
    )
    args = parser.parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    responder = demo_responder if args.demo else None
    with ScriptedModelServer(responder, host=args.host, port=args.port, api_key=args.api_key) as s:
        print(f"openai_base_url {s.openai_base_url}", flush=True)
        print(f"anthropic_base_url {s.anthropic_base_url}", flush=True)
        done.wait()


if __name__ == "__main__":
    main()
