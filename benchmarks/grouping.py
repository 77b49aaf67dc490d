"""Loghub-2k grouping benchmark: CALI's template miner against drain3 with its default settings."""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cali.grouping.miner import TemplateMiner  # noqa: E402
from cali.grouping.scoring import score  # noqa: E402

SYSTEMS = ["HDFS", "Hadoop", "Spark", "Zookeeper", "HealthApp", "OpenSSH", "Android", "Linux"]


def default_data_dir() -> Path:
    return Path(os.environ.get("CALI_LOGHUB_DIR") or REPO.parent / "shared" / "datasets" / "loghub-2k")


def load(data: Path, system: str) -> tuple[list[str], list[str], dict[str, str]]:
    """Return (line ids, contents, line id -> true template), dropping empty truths from the last."""
    path = data / system / f"{system}_2k.log_structured_corrected.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ids = [r["LineId"] for r in rows]
    truth = {r["LineId"]: r["EventTemplate"] for r in rows if r["EventTemplate"].strip()}
    return ids, [r["Content"] for r in rows], truth


def cali_parser() -> Parser:
    miner = TemplateMiner()
    return lambda message: miner.add(message).group_id


def drain3_parser() -> Parser:
    from drain3 import TemplateMiner as Drain3
    from drain3.template_miner_config import TemplateMinerConfig

    # TemplateMinerConfig() holds drain3's defaults; nothing is loaded from drain3.ini.
    drain = Drain3(config=TemplateMinerConfig())
    return lambda message: str(drain.add_log_message(message)["cluster_id"])


Parser = Callable[[str], str]


def run(make: Callable[[], Parser], messages: list[str], repeats: int) -> tuple[list[str], float]:
    """Mine `messages` `repeats` times with a fresh parser; return the groups and the best lines/s."""
    best = float("inf")
    groups: list[str] = []
    for _ in range(repeats):
        parse = make()
        start = time.perf_counter()
        groups = [parse(m) for m in messages]
        best = min(best, time.perf_counter() - start)
    return groups, len(messages) / best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=None,
                    help="loghub-2k folder (default: $CALI_LOGHUB_DIR or ../shared/datasets/loghub-2k)")
    ap.add_argument("--systems", nargs="*", default=SYSTEMS)
    ap.add_argument("--repeats", type=int, default=3, help="timing runs per parser; the best one counts")
    ap.add_argument("--predictions", type=Path, help="also write <dir>/<System>.csv (LineId,ClusterId)")
    ap.add_argument("--no-drain3", action="store_true")
    a = ap.parse_args(argv)
    data = a.data or default_data_dir()
    if not data.is_dir():
        ap.error(f"no Loghub-2k data at {data}: pass --data or set CALI_LOGHUB_DIR")
    logging.getLogger("drain3").setLevel(logging.WARNING)

    parsers = {"CALI": cali_parser} | ({} if a.no_drain3 else {"drain3": drain3_parser})
    columns = (f" | {n + ' GA':>9} {n + ' FGA':>10} {'lines/s':>9}" for n in parsers)
    header = f"{'system':<10}" + "".join(columns)
    print(header)
    print("-" * len(header))
    totals = {n: [0.0, 0.0, 0.0] for n in parsers}
    for system in a.systems:
        ids, messages, truth = load(data, system)
        cells = []
        for name, make in parsers.items():
            groups, speed = run(make, messages, a.repeats)
            s = score(truth, dict(zip(ids, groups, strict=True)))
            for i, v in enumerate((s.ga, s.fga, speed)):
                totals[name][i] += v
            cells.append(f" | {s.ga:>9.3f} {s.fga:>10.3f} {speed:>9,.0f}")
            if a.predictions and name == "CALI":
                a.predictions.mkdir(parents=True, exist_ok=True)
                with (a.predictions / f"{system}.csv").open("w", newline="", encoding="utf-8") as f:
                    w = csv.writer(f)
                    w.writerow(["LineId", "ClusterId"])
                    w.writerows(zip(ids, groups, strict=True))
        print(f"{system:<10}" + "".join(cells))
    k = len(a.systems)
    print("-" * len(header))
    means = (f" | {ga / k:>9.3f} {fga / k:>10.3f} {speed / k:>9,.0f}" for ga, fga, speed in totals.values())
    print(f"{'mean':<10}" + "".join(means))
    return 0


if __name__ == "__main__":
    sys.exit(main())
