"""GA / FGA scoring, checked by hand and against the shared Loghub evaluator."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cali.grouping.scoring import score

REPO = Path(__file__).resolve().parents[3]
DATA = Path(os.environ.get("CALI_LOGHUB_DIR") or REPO.parent / "shared" / "datasets" / "loghub-2k")
EVALUATOR = REPO.parent / "shared" / "tools" / "loghub_ga.py"


def test_ga_counts_only_exact_groups() -> None:
    truth = {"1": "A", "2": "A", "3": "B", "4": "C"}
    predicted = {"1": "x", "2": "x", "3": "y", "4": "y"}  # A right; B and C merged
    s = score(truth, predicted)
    assert s.ga == pytest.approx(0.5)
    # one right group of 2 predicted and 3 true: F1 of 1/2 and 1/3
    assert s.fga == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))


def test_missing_prediction_is_wrong() -> None:
    assert score({"1": "A", "2": "A"}, {"1": "x"}).ga == 0.0


@pytest.mark.skipif(not (DATA.is_dir() and EVALUATOR.exists()),
                    reason=f"needs the shared Loghub-2k data ({DATA}) and {EVALUATOR}")
@pytest.mark.parametrize("system", ["HDFS", "Android", "Linux"])
def test_agrees_with_shared_evaluator(system: str, tmp_path) -> None:
    sys.path.insert(0, str(REPO))
    from benchmarks.grouping import cali_parser, load, run

    ids, messages, truth = load(DATA, system)
    groups, _ = run(cali_parser, messages, repeats=1)
    predictions = tmp_path / f"{system}.csv"
    rows = "".join(f"{i},{g}\n" for i, g in zip(ids, groups, strict=True))
    predictions.write_text("LineId,ClusterId\n" + rows)
    gt = DATA / system / f"{system}_2k.log_structured_corrected.csv"
    out = subprocess.run(
        [sys.executable, str(EVALUATOR), "--gt-file", str(gt), "--gt-key", "EventTemplate",
         str(DATA / system), str(predictions), "--json"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    reference = json.loads(out)
    ours = score(truth, dict(zip(ids, groups, strict=True)))
    assert ours.ga == pytest.approx(reference["GA"])
    assert ours.fga == pytest.approx(reference["FGA"])
    assert ours.messages == reference["messages"]
