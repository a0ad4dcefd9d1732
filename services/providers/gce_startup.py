"""The startup script of a GCE worker VM, and the metadata it reads.

The VM boots a stock Debian image; the script installs podman and squall, then runs the worker
agent pointed at the cluster's Kafka with the instance's own size and pool. Everything specific
to the instance travels as metadata (read from the metadata server), so the script is the same
text for every VM. When the agent exits the VM deletes itself: a machine whose worker stopped
costs money and does nothing (Hail's run_script does the same).
"""

from __future__ import annotations

STARTUP_SCRIPT = r"""#!/bin/bash
set -euo pipefail
md() { curl -sf -H 'Metadata-Flavor: Google' "http://metadata.google.internal/computeMetadata/v1/instance/$1"; }
attr() { md "attributes/$1"; }

NAME=$(md name)
ZONE=$(md zone | awk -F/ '{print $NF}')
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q podman python3-venv curl
python3 -m venv /opt/squall
/opt/squall/bin/pip install -q "$(attr squall-package)"
# the podman fixes this kind of machine needs (rlimits, cgroups, conmon OOM marker)
/opt/squall/bin/python -c 'import deploy, pathlib; print(pathlib.Path(deploy.__file__).parent / "podman" / "setup.sh")' \
  | xargs bash || true

set +e
/opt/squall/bin/python -m worker \
  --instance-name "$NAME" --cores "$(attr squall-cores)" --memory-gib "$(attr squall-memory-gib)" \
  --storage-gib "$(attr squall-storage-gib)" --pool "$(attr squall-pool)" --region "$(attr squall-region)" \
  $( [ "$(attr squall-preemptible)" = "true" ] && echo --preemptible ) \
  --bootstrap "$(attr squall-kafka-bootstrap)" --topic-prefix "$(attr squall-topic-prefix)" \
  --system-bucket "$(attr squall-system-bucket)" \
  --agent-host 0.0.0.0 --agent-port 5000 --agent-url "http://$(md network-interfaces/0/ip):5000" \
  --home /var/lib/squall
echo "worker exited with $?; deleting this instance"
while true; do
  gcloud -q compute instances delete "$NAME" --zone "$ZONE" && break
  sleep 15
done
"""


def worker_metadata(*, cores: int, memory_gib: float, storage_gib: int, pool: str, region: str, preemptible: bool,
                    kafka_bootstrap: str, topic_prefix: str, squall_package: str,
                    job_private_for: str | None, system_bucket: str = "squall-system") -> dict[str, str]:
    items = {
        "startup-script": STARTUP_SCRIPT,
        "squall-cores": str(cores),
        "squall-memory-gib": f"{memory_gib:g}",
        "squall-storage-gib": str(storage_gib),
        "squall-pool": pool,
        "squall-region": region,
        "squall-preemptible": "true" if preemptible else "false",
        "squall-kafka-bootstrap": kafka_bootstrap,
        "squall-topic-prefix": topic_prefix,
        "squall-package": squall_package,
        "squall-system-bucket": system_bucket,
    }
    if job_private_for:
        items["squall-job-private-for"] = job_private_for
    return items
