"""moto server in ONE thread: `moto_server` hard-codes werkzeug's threaded=True, which races under load."""

from __future__ import annotations

import argparse
import os
import signal
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto server, single-threaded, on one host:port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)

    os.environ.setdefault("MOTO_PORT", str(args.port))
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    # threaded=False also keeps werkzeug on HTTP/1.0 (one request per connection), so an idle
    # keep-alive client can never hold the single worker.
    run_simple(args.host, args.port, app, threaded=False, processes=1, use_reloader=False,
               request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
