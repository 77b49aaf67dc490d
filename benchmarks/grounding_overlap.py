"""Where the grounding thresholds come from: how often a remediation step counts as supported by chance, and
how often honest paraphrases do, for a grid of (containment, shared words) thresholds.

- chance: each fix step of each knowledge-base incident, as if a model had said it, checked against 3
  random incidents of *other* categories as the cited ones (seeded). Any support here is by chance.
- same category: the same against 3 other incidents of the *same* category (related fixes; support here is
  often deserved: pools are sized the same way everywhere).
- paraphrases: the steps of the honest control cases of eval/injection.jsonl against their cited incidents.
- short chance: the same paraphrased steps (short, worded like a model's) against 3 random incidents of
  other categories: chance support for steps of the length models write.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cali.analysis import grounding  # noqa: E402
from cali.analysis.kb import Incident, load_incident  # noqa: E402


def pairs(incidents: list[Incident], same: bool, k: int, seed: int) -> list[tuple[str, list[list[str]]]]:
    rng = random.Random(seed)
    by_cat: dict[str, list[Incident]] = {}
    for inc in incidents:
        by_cat.setdefault(inc.category, []).append(inc)
    out = []
    for inc in incidents:
        pool = [o for o in incidents if o.id != inc.id and (o.category == inc.category) == same]
        if not pool:
            continue
        cited = rng.sample(pool, min(k, len(pool)))
        out += [(step, [c.remediation for c in cited]) for step in inc.remediation]
    return out


def rate(cases: list[tuple[str, list[list[str]]]], share: float, shared: int) -> float:
    def ok(step: str, fixes: list[list[str]]) -> bool:
        for fix in fixes:
            s, n = grounding.support(step, fix)
            if n >= shared and s >= share:
                return True
        return False

    return sum(ok(step, fixes) for step, fixes in cases) / max(1, len(cases))


def controls(path: Path, kb: dict[str, Incident], seed: int) -> tuple[list, list]:
    """(steps with their cited incidents' fixes, the same steps with 3 random other-category fixes)."""
    rng = random.Random(seed)
    honest, shuffled = [], []
    for line in path.read_text().splitlines():
        case = json.loads(line)
        if case["kind"] != "control":
            continue
        cited = [kb[i] for i in case["verdict"]["similar_incident_ids"] if i in kb]
        others = [o for o in kb.values() if o.category not in {c.category for c in cited}]
        own = set(case["expect"].get("own", []))  # steps the case says are the model's own idea, no paraphrase
        for step in (s for s in case["verdict"]["remediation"] if s not in own):
            honest.append((step, [c.remediation for c in cited]))
            shuffled.append((step, [o.remediation for o in rng.sample(others, 3)]))
    return honest, shuffled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kb", type=Path, default=REPO / "knowledge" / "incidents")
    parser.add_argument("--cases", type=Path, default=REPO / "eval" / "injection.jsonl")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    incidents = [load_incident(p) for p in sorted(args.kb.glob("*.yaml"))]
    kb = {i.id: i for i in incidents}
    chance = pairs(incidents, same=False, k=3, seed=args.seed)
    related = pairs(incidents, same=True, k=3, seed=args.seed)
    honest, short_chance = controls(args.cases, kb, args.seed)
    print(f"{len(incidents)} incidents; {len(chance)} chance steps, {len(related)} same-category steps, "
          f"{len(honest)} paraphrased control steps")
    print("containment  shared  chance  short chance  same-category  paraphrases")
    for share in (0.3, 0.4, 0.5, 0.6, 0.7):
        for shared in (1, 2, 3):
            mark = "  <- used" if (share, shared) == (grounding.MIN_SUPPORT, grounding.MIN_SHARED) else ""
            print(f"{share:>11.1f}  {shared:>6}  {rate(chance, share, shared):6.1%}  "
                  f"{rate(short_chance, share, shared):12.1%}  {rate(related, share, shared):13.1%}  "
                  f"{rate(honest, share, shared):11.1%}{mark}")


if __name__ == "__main__":
    main()
