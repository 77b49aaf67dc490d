"""Ray Job entry point: one day of the archive into the knowledge base (`python jobs/reindex.py --date D`).

Runs unchanged on a local Ray, through `ray job submit`, from the Airflow DAG and as the KubeRay RayJob
(k8s/kuberay/rayjob-reindex.yaml). The logic is cali.batch.reindex; settings come from the environment
(CALI_<SECTION>__<FIELD>, the cluster's ConfigMap), secrets too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", required=True, type=date.fromisoformat, help="UTC day, YYYY-MM-DD")
    args = parser.parse_args(argv)

    import ray
    from pydantic import SecretStr

    from cali.batch.reindex import run_reindex
    from cali.bootstrap import LOOPBACK_ENV
    from cali.config import load_settings, with_secrets

    settings = with_secrets(load_settings(), os.environ)
    if not ray.is_initialized():
        os.environ.update(LOOPBACK_ENV)
        # Inside a Ray Job RAY_ADDRESS names the cluster; run by hand, this starts a local one.
        ray.init(address=os.environ.get("RAY_ADDRESS") or settings.ray.address, namespace=settings.ray.namespace,
                 logging_level="WARNING", log_to_driver=False)
    token = os.environ.get("CALI_MILVUS_TOKEN")
    summary = run_reindex(settings, args.date.isoformat(), kb_token=SecretStr(token) if token else None)
    print(json.dumps({k: summary[k] for k in ("day", "records", "alertable", "clusters", "seconds", "rates",
                                               "report")} | {"learned": summary["knowledge"].get("learned")}))
    return 0


if __name__ == "__main__":
    # The script's own directory is jobs/, not the repo: make `import cali` find the checkout it lives in.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
