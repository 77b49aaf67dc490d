"""A real Fluent Bit beside CALI's shipper on the local stack: counts, joins, JSON keys, a restart without credentials.

Not a test (CI has no Fluent Bit): run it with a fluent-bit binary you built or installed, and copy the
figures into docs/fluent-bit.md.

    python benchmarks/fluentbit_check.py --fluent-bit /path/to/fluent-bit [--duration 60]

It starts its own stack (TLS, free ports) in a temp dir, writes the demo's logs there with the
generator, renders the local profile from examples/cali.toml pointed at that stack, and runs
Fluent Bit from that dir (the config's paths are relative to the working directory).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path

import orjson

from cali.core.clock import SystemClock
from cali.fluentbit.command import EXAMPLE
from cali.fluentbit.render import LOCAL, render_config
from cali.gen.writer import run_generate
from cali.ship.settings import load_ship_config
from cali.ship.shipper import Shipper
from cali.sources.kinesis import KinesisSource, read_all
from cali.stack import StackConfig, boto_client, down, up
from cali.stack.procs import free_port

VOLATILE = ("@ingested", "host")  # differ between two runs by design


def records(stream: KinesisSource) -> list[dict]:
    return [orjson.loads(line) for r in read_all(stream) for line in r.data.splitlines()]


def identity(rec: dict) -> tuple:
    return rec["log_file"], rec["log_offset"], rec.get("message") or rec.get("msg") or ""


def new_stream(client, name: str) -> KinesisSource:
    client.create_stream(StreamName=name, ShardCount=2)
    src = KinesisSource(client, name)
    src.wait_active()
    return src


def run_fluent_bit(binary: str, config: Path, cwd: Path, *, credentials: bool, seconds: float) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOSTNAME"] = "fb-host"
    if credentials:
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    else:  # nowhere to find credentials: no env, no shared files, no instance metadata
        env.update(AWS_SHARED_CREDENTIALS_FILE=str(cwd / "none"), AWS_CONFIG_FILE=str(cwd / "none"),
                   AWS_EC2_METADATA_DISABLED="true")
    with open(cwd / f"fluent-bit-{int(time.time())}.log", "w") as log:
        proc = subprocess.Popen([binary, "-c", str(config)], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(seconds)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=60)


def wait_count(stream: KinesisSource, want: int, timeout_s: float) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    got = records(stream)
    while len(got) < want and time.monotonic() < deadline:
        time.sleep(2)
        got = records(stream)
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fluent-bit", required=True, help="path of the fluent-bit binary")
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of generated traffic")
    ap.add_argument("--rate", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cali-fbcheck-"))
    stack = StackConfig(state_dir=work / "stack", kinesis_port=free_port(), aws_port=free_port(), tls=True)
    up(stack)
    try:
        client = boto_client("kinesis", stack.kinesis_endpoint, stack.region, verify=stack.kinesis_verify)
        cfg = load_ship_config(EXAMPLE)
        summary = run_generate(work, seed=a.seed, rate=a.rate, duration=a.duration, realtime=False, max_bytes=0,
                               backups=0, sources=cfg.to_sources())
        events = summary["events"]
        print(f"generated {summary['lines']} lines, {events} events into {work}/.local/logs/apps")

        def fb_config(stream: str, state: str) -> Path:
            profile = replace(LOCAL, stream=stream, port=stack.kinesis_port, ca_file=str(stack.ca_path),
                              state_dir=state)
            (work / state).mkdir(parents=True, exist_ok=True)
            path = work / f"{state}.yaml"
            path.write_text(render_config(cfg.to_sources(), cfg.catalog(), profile=profile))
            return path

        # 1. Fluent Bit with credentials, and the shipper on another stream: the same records?
        fb_stream = new_stream(client, f"fb-{uuid.uuid4().hex[:8]}")
        run_fluent_bit(a.fluent_bit, fb_config(fb_stream.stream, "fb1"), work, credentials=True, seconds=15)
        fb = wait_count(fb_stream, events, 30)
        sh_stream = new_stream(client, f"sh-{uuid.uuid4().hex[:8]}")
        os.chdir(work)  # the same relative paths as Fluent Bit, so log_file agrees
        shipper = Shipper(cfg.to_sources(), sh_stream, work / "shipper" / "offsets.json", host="shipper-host",
                          clock=SystemClock(), formats=cfg.catalog())
        shipper.run_once()
        shipper.run_once(shipper.clock.monotonic() + 2)
        shipper.drain()
        shipper.close()
        sh = records(sh_stream)
        fb_ids, sh_ids = Counter(map(identity, fb)), Counter(map(identity, sh))
        print(f"events: generator {events}, Fluent Bit {len(fb)} ({len(fb_ids)} distinct origins), "
              f"shipper {len(sh)} ({len(sh_ids)} distinct)")
        joined = [sum("\n" in (r.get("message") or "") for r in rs_) for rs_ in (fb, sh)]
        print(f"multiline events (message with a newline): Fluent Bit {joined[0]}, shipper {joined[1]}")
        by_id = {identity(r): r for r in sh}
        same = differ = 0
        diffs: Counter = Counter()
        for r in fb:
            other = by_id.get(identity(r))
            if other is None:
                diffs["no shipper record with the same origin"] += 1
                continue
            a_, b_ = ({k: v for k, v in x.items() if k not in VOLATILE} for x in (r, other))
            if a_ == b_:
                same += 1
            else:
                differ += 1
                for k in a_.keys() | b_.keys():
                    if a_.get(k) != b_.get(k):
                        diffs[f"key {k!r}"] += 1
        print(f"records equal but for {VOLATILE}: {same}; different: {differ} {dict(diffs)}")

        # 2. The scenario: started without credentials, stopped, restarted with them.
        rs = new_stream(client, f"rs-{uuid.uuid4().hex[:8]}")
        conf = fb_config(rs.stream, "fb2")
        rc = run_fluent_bit(a.fluent_bit, conf, work, credentials=False, seconds=15)
        before = len(records(rs))
        chunks = sum(1 for _ in (work / "fb2" / "storage").rglob("*.flb"))
        print(f"without credentials: delivered {before}, exit {rc}, {chunks} chunk files left in storage")
        run_fluent_bit(a.fluent_bit, conf, work, credentials=True, seconds=20)
        after = wait_count(rs, events, 30)
        ids = Counter(map(identity, after))
        print(f"restarted with credentials: delivered {len(after)} records, {len(ids)} distinct origins "
              f"of {events} events ({len(after) - len(ids)} repeats)")
    finally:
        down(stack)
        print(f"work dir kept: {work}")


if __name__ == "__main__":
    main()
