"""What Ray's mutual TLS (RAY_USE_TLS) would cost the local Ray, next to the token authentication cali
uses: actor calls and Serve DeploymentHandle calls, each mode in a fresh Ray. Prints figures; asserts nothing.

`python benchmarks/ray_transport.py [--rounds 2]` runs the modes alternately in child processes: the TLS
variables must be set before any Ray process starts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = ("token", "token+mtls")


def _certs(d: Path) -> dict[str, str]:
    """A CA and one leaf for 127.0.0.1, usable as server and client (Ray uses the same pair for both)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ray")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(san, critical=False).add_extension(eku, critical=False).sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = {"RAY_TLS_CA_CERT": d / "ca.pem", "RAY_TLS_SERVER_CERT": d / "cert.pem",
             "RAY_TLS_SERVER_KEY": d / "key.pem"}
    paths["RAY_TLS_CA_CERT"].write_bytes(ca.public_bytes(pem))
    paths["RAY_TLS_SERVER_CERT"].write_bytes(leaf.public_bytes(pem))
    paths["RAY_TLS_SERVER_KEY"].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return {k: str(v) for k, v in paths.items()}


def _latency(fn, n: int) -> dict[str, float]:
    fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    q = statistics.quantiles(ts, n=100)
    return {"p50_ms": round(q[49] * 1000, 2), "p99_ms": round(q[98] * 1000, 2)}


def measure() -> dict[str, object]:
    """In this process: a fresh local Ray in whatever mode the environment says."""
    from cali import rayenv

    rayenv.prepare(None)
    import ray
    from ray import serve

    from cali.stack.procs import free_port

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    rayenv.check_after_start(ray)

    @ray.remote(num_cpus=0)
    class Echo:
        def echo(self, x: bytes) -> bytes:
            return x

    @serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64)
    class Handle:
        async def __call__(self, x: bytes) -> bytes:
            return x

    small, big = b"x" * 2_000, b"x" * 200_000
    try:
        echo = Echo.remote()
        out: dict[str, object] = {"actor_2kb": _latency(lambda: ray.get(echo.echo.remote(small)), 2000),
                                  "actor_200kb": _latency(lambda: ray.get(echo.echo.remote(big)), 500)}
        serve.start(http_options={"host": "127.0.0.1", "port": free_port()})
        handle = serve.run(Handle.bind(), name="bench", route_prefix=None)
        out["serve_handle_2kb"] = _latency(lambda: handle.remote(small).result(), 1000)

        async def burst(n: int, concurrency: int) -> float:
            sem = asyncio.Semaphore(concurrency)

            async def one() -> None:
                async with sem:
                    await handle.remote(small)

            t = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(n)))
            return round(n / (time.perf_counter() - t), 1)

        out["serve_handle_req_per_s_16_concurrent"] = asyncio.run(burst(2000, 16))
        return out
    finally:
        serve.shutdown()
        ray.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(measure()), flush=True)
        return
    certs = _certs(Path(tempfile.mkdtemp(prefix="cali-ray-tls-")))
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_TLS_") and k != "RAY_USE_TLS"}
    for r in range(a.rounds):
        for mode in MODES:
            env = {**base, "RAY_AUTH_MODE": "token"}
            if mode == "token+mtls":
                env.update(certs, RAY_USE_TLS="1")
            done = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True,
                                  check=True)
            print(f"round {r + 1} {mode}: {done.stdout.strip().splitlines()[-1]}", flush=True)


if __name__ == "__main__":
    main()
