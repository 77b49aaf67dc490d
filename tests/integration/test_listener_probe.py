"""The probe behind tests/e2e/test_demo.py tells an open listener from one that demands credentials:
plaintext gRPC, plain HTTP and TLS without client certificates are open; mutual TLS and a server that
rejects calls without a token are not."""

from __future__ import annotations

import http.server
import threading
from concurrent import futures

import grpc
import pytest

from cali.stack.tls import ensure_tls
from tests.support.listeners import Listener, verdict

pytestmark = pytest.mark.integration


class _RejectWithoutToken(grpc.ServerInterceptor):
    """What Ray's token interceptor does: abort before the method runs unless the token is sent."""

    def intercept_service(self, continuation, details):
        if ("authorization", "Bearer t0ken") in (details.invocation_metadata or ()):
            return continuation(details)

        def abort(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "token required")

        return grpc.unary_unary_rpc_method_handler(abort)


def _grpc(credentials=None, interceptors=()) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(2), interceptors=list(interceptors))
    port = server.add_secure_port("[::]:0", credentials) if credentials else server.add_insecure_port("[::]:0")
    server.start()
    return server, port


def _tls(tmp_path, require_client_auth: bool) -> grpc.ServerCredentials:
    paths = ensure_tls(tmp_path / "tls")
    return grpc.ssl_server_credentials([(paths["key"].read_bytes(), paths["cert"].read_bytes())],
                                       root_certificates=paths["ca"].read_bytes(),
                                       require_client_auth=require_client_auth)


@pytest.mark.parametrize(("case", "safe"), [("plaintext grpc", False), ("tls, no client certificate", False),
                                            ("mutual tls", True), ("token interceptor", True)])
def test_grpc_listeners_on_all_interfaces(tmp_path, case, safe):
    server, port = {
        "plaintext grpc": lambda: _grpc(),
        "tls, no client certificate": lambda: _grpc(_tls(tmp_path, False)),
        "mutual tls": lambda: _grpc(_tls(tmp_path, True)),
        "token interceptor": lambda: _grpc(interceptors=[_RejectWithoutToken()]),
    }[case]()
    try:
        ok, why = verdict(Listener(0, case, "::", port))
    finally:
        server.stop(0)
    assert ok is safe, why


def test_plain_http_on_all_interfaces_is_open_and_loopback_is_not_probed():
    httpd = http.server.HTTPServer(("0.0.0.0", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        ok, why = verdict(Listener(0, "http", "0.0.0.0", httpd.server_address[1]))
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert not ok, why
    assert verdict(Listener(0, "x", "::ffff:127.0.0.1", 1)) == (True, "loopback")
