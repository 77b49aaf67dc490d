"""Every TCP listener of a process tree, and whether one bound beyond loopback lets a stranger in."""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from dataclasses import dataclass

import psutil

# Any method name does: an authenticating server rejects the call before it looks the method up.
PROBE_METHOD = "/ray.serve.ASGIService/HandleRequest"
# What OpenSSL reports when the server asked for a client certificate and got none (TLS 1.2 / 1.3).
CLIENT_CERT_REQUIRED = {"SSLV3_ALERT_HANDSHAKE_FAILURE", "TLSV13_ALERT_CERTIFICATE_REQUIRED",
                        "PEER_DID_NOT_RETURN_A_CERTIFICATE", "SSLV3_ALERT_BAD_CERTIFICATE"}


@dataclass(frozen=True)
class Listener:
    pid: int
    process: str
    ip: str
    port: int

    @property
    def loopback(self) -> bool:
        addr = ipaddress.ip_address(self.ip)
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        return addr.is_loopback

    def __str__(self) -> str:
        return f"{self.process} (pid {self.pid}) on {self.ip}:{self.port}"


def process_tree(root_pid: int) -> list[psutil.Process]:
    root = psutil.Process(root_pid)
    return [root, *root.children(recursive=True)]


def listeners(pids: list[int]) -> list[Listener]:
    """The TCP sockets in LISTEN state held by these processes."""
    out = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            name = (proc.cmdline() or [proc.name()])[0].rsplit("/", 1)[-1]
            if name.startswith("ray::"):
                # A worker's title carries the method it runs: "ray::ServeReplica:app:Api.handle_request".
                name = re.sub(r"\.\w+$", "", name.split()[0])
            for c in proc.net_connections(kind="tcp"):
                if c.status == psutil.CONN_LISTEN:
                    out.append(Listener(pid, name, c.laddr.ip, c.laddr.port))
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return sorted(set(out), key=lambda s: (s.port, s.pid))


def external_addresses() -> list[str]:
    """The machine's own non-loopback, non-link-local addresses: where a stranger would connect."""
    out = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            ip = ipaddress.ip_address(a.address.split("%")[0])
            if not (ip.is_loopback or ip.is_link_local):
                out.append(str(ip))
    return out


def targets(listener: Listener) -> list[str]:
    """Where to reach a non-loopback listener from: the external addresses its bind covers, else itself."""
    ip = ipaddress.ip_address(listener.ip)
    if not ip.is_unspecified:
        return [listener.ip]
    ext = [a for a in external_addresses() if ip.version == 6 or ipaddress.ip_address(a).version == 4]
    # A wildcard bind on a machine with no other address is still checked, through loopback.
    return ext or ["::1" if ip.version == 6 else "127.0.0.1"]


def _connects(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tls_verdict(host: str, port: int, timeout: float) -> str | None:
    """'client certificate required' when the server is TLS and refuses us without one; None if not TLS."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            # In TLS 1.3 the server judges the client's certificate after the client's side of the
            # handshake is done: an HTTP/2 server that accepts us sends its SETTINGS frame at once,
            # one that refuses closes the connection (gRPC's BoringSSL sends no alert; measured).
            tls.settimeout(timeout)
            try:
                first = tls.recv(1)
            except ssl.SSLError as exc:
                if exc.reason in CLIENT_CERT_REQUIRED:
                    return "client certificate required"
                raise
            except ConnectionError:
                return "client certificate required"
            except TimeoutError:
                return "TLS without a client certificate (silent)"
            return "client certificate required" if first == b"" else "TLS without a client certificate"
    except ssl.SSLError as exc:
        return "client certificate required" if exc.reason in CLIENT_CERT_REQUIRED else None
    except OSError:
        return None


def _grpc_verdict(host: str, port: int, timeout: float) -> str:
    import grpc

    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(PROBE_METHOD, request_serializer=None, response_deserializer=None)
        try:
            call(b"", timeout=timeout)
            return "answered a call without credentials"
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.UNAUTHENTICATED:
                return "token required"
            return f"{code.name}: {exc.details()}"


AUTHENTICATED = {"client certificate required", "token required"}


def verdict(listener: Listener, timeout: float = 3.0) -> tuple[bool, str]:
    """(safe, why) for one listener: loopback, unreachable, or proven to demand credentials."""
    if listener.loopback:
        return True, "loopback"
    reasons = []
    for host in targets(listener):
        if not _connects(host, listener.port, timeout):
            reasons.append(f"{host}: refused")
            continue
        why = _tls_verdict(host, listener.port, timeout) or _grpc_verdict(host, listener.port, timeout)
        if why not in AUTHENTICATED:
            return False, f"{host}:{listener.port} accepts a stranger ({why})"
        reasons.append(f"{host}: {why}")
    return True, "; ".join(reasons)
