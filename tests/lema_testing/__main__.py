"""Run the scripted server in the foreground: `PYTHONPATH=tests python -m lema_testing`.

Every chat or completion request gets the same answer (`--answer`), or its prompt's last line
back (`--echo`), so a flow can be tried end to end with no model at all:

    PYTHONPATH=tests python -m lema_testing --port 8000 --answer "The answer is 4."
    lema sample --generator "m=m@http://127.0.0.1:8000/v1" --limit 5 --out runs/try
"""
from __future__ import annotations

import argparse
import signal
import threading

from .scripted_server import ScriptedServer, echo_responder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lema_testing", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000, help="Port on 127.0.0.1 (default 8000).")
    parser.add_argument("--answer", default="The answer is 4.", help="The text every request gets back.")
    parser.add_argument("--echo", action="store_true", help="Answer each prompt with its own last line instead.")
    parser.add_argument("--latency", type=float, default=0.0, help="Seconds before each answer.")
    parser.add_argument("--api-key", help="Refuse requests without this bearer key (HTTP 401).")
    args = parser.parse_args(argv)
    responder = echo_responder if args.echo else (lambda body, attempt: args.answer)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with ScriptedServer(responder, latency=args.latency, port=args.port, api_key=args.api_key) as server:
        print(f"scripted server at {server.base_url} (Ctrl-C stops it)", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
