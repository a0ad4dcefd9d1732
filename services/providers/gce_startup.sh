#!/bin/bash
# squall worker VM bootstrap: the GCE startup script (the same text for every VM; the instance's own
# settings come from its metadata). services/providers/gce_startup.py documents every attribute.
#
#   1. packages: podman (then deploy/podman/setup.sh's fixes, from the release itself), a JDK for
#      JVM pools, python3-venv;
#   2. the release: exactly the control plane's wheel, fetched from its bucket and checked against
#      the sha256 in the metadata before pip installs it;
#   3. Kafka: the broker's CA and the worker principal's password, from the metadata or Secret
#      Manager, written root-only under /etc/squall (never part of an image);
#   4. the agent, restarted when it dies as systemd would (at once, then 1, 2, 4, 8 s; given up after
#      6 deaths in a row without a minute of life); once it exits for good the VM deletes itself.
#
# SQUALL_ROOT (a directory prefixed to every path it writes), SQUALL_METADATA_URL and
# SQUALL_SKIP_PACKAGES=1 exist so tests can run it against a fake metadata server; a VM sets none.
set -euo pipefail
umask 022

ROOT=${SQUALL_ROOT:-}
MD=${SQUALL_METADATA_URL:-http://metadata.google.internal/computeMetadata/v1}
ETC=$ROOT/etc/squall
OPT=$ROOT/opt/squall
VAR=$ROOT/var/lib/squall
log() { echo "squall-startup: $*" >&2; }
die() { log "$*"; exit 1; }

md() { curl -sSf --retry 5 --retry-connrefused -H 'Metadata-Flavor: Google' "$MD/$1"; }
attr() { md "instance/attributes/$1"; }
attr_or() { curl -sf -H 'Metadata-Flavor: Google' "$MD/instance/attributes/$1" || printf '%s' "$2"; }
access_token() {
  md instance/service-accounts/default/token | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

read_settings() {
  NAME=$(md instance/name)
  ZONE=$(md instance/zone | awk -F/ '{print $NF}')
  PROJECT=$(md project/project-id)
  STORAGE=$(attr_or squall-storage-endpoint https://storage.googleapis.com)
  SECRETS=$(attr_or squall-secrets-endpoint https://secretmanager.googleapis.com)
  COMPUTE=$(attr_or squall-compute-endpoint https://compute.googleapis.com)
}

install_packages() {
  [ "${SQUALL_SKIP_PACKAGES:-0}" = 1 ] && { log "skipping packages (SQUALL_SKIP_PACKAGES=1)"; return; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends podman crun conmon netavark iptables mmdebstrap \
    python3-venv curl ca-certificates openjdk-17-jdk-headless
}

# gs://bucket/object -> the object's bytes into $2, through the storage JSON API as this VM's account
gcs_download() {
  local bucket object encoded
  bucket=${1#gs://}; bucket=${bucket%%/*}
  object=${1#gs://"$bucket"/}
  encoded=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$object")
  curl -sSf --retry 5 -H "Authorization: Bearer $(access_token)" \
    "$STORAGE/storage/v1/b/$bucket/o/$encoded?alt=media" -o "$2"
}

install_release() {
  local url sha wheel
  url=$(attr squall-wheel-url) || die "metadata squall-wheel-url is missing"
  sha=$(attr squall-wheel-sha256) || die "metadata squall-wheel-sha256 is missing"
  mkdir -p "$OPT"
  wheel="$OPT/${url##*/}"
  gcs_download "$url" "$wheel.part"
  echo "$sha  $wheel.part" | sha256sum --check --status || die "the wheel at $url does not match sha256 $sha"
  mv "$wheel.part" "$wheel"
  [ -x "$OPT/bin/python" ] || python3 -m venv "$OPT"
  # e.g. "--no-index --find-links /wheelhouse" on a VM without a package index
  # shellcheck disable=SC2086
  "$OPT/bin/pip" install --quiet --disable-pip-version-check $(attr_or squall-pip-args "") "$wheel"
  log "installed $(basename "$wheel") (sha256 $sha)"
}

podman_fixes() {
  [ "${SQUALL_SKIP_PACKAGES:-0}" = 1 ] && return
  # the fixes ship inside the release: rlimits, cgroups, conmon's OOM marker, the base images
  IMAGES=$(attr_or squall-base-images python) \
    bash "$("$OPT/bin/python" -c 'import deploy, pathlib; print(pathlib.Path(deploy.__file__).parent / "podman" / "setup.sh")')"
}

write_kafka_credentials() {
  local password secret
  mkdir -p "$ETC"
  chmod 700 "$ETC"
  attr squall-kafka-ca > "$ETC/kafka-ca.crt" || die "metadata squall-kafka-ca is missing"
  if secret=$(attr_or squall-kafka-password-secret ""); [ -n "$secret" ]; then
    # projects/P/secrets/S/versions/V, read with this VM's service account
    password=$(curl -sSf --retry 5 -H "Authorization: Bearer $(access_token)" "$SECRETS/v1/$secret:access" |
      python3 -c 'import base64, json, sys; print(base64.b64decode(json.load(sys.stdin)["payload"]["data"]).decode())')
  else
    password=$(attr squall-kafka-password) || die "neither squall-kafka-password-secret nor squall-kafka-password"
  fi
  # the password travels in the environment (root-only in /proc), never on a command line
  (umask 077 && SQUALL_KAFKA_PASSWORD=$password python3 - "$ETC/kafka-credentials.json" \
      "$(attr squall-kafka-username)" "$ETC/kafka-ca.crt" <<'PY'
import json, os, sys
path, user, ca = sys.argv[1:4]
with open(path, "w") as f:
    json.dump({"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "username": user,
               "password": os.environ["SQUALL_KAFKA_PASSWORD"], "ca_file": ca}, f)
PY
  )
  log "Kafka credentials for $(attr squall-kafka-username) in $ETC (root only)"
}

agent_command() {
  local preemptible=() port
  port=$(attr_or squall-agent-port 5000)  # the live-log endpoint the front end reaches
  [ "$(attr_or squall-preemptible false)" = true ] && preemptible=(--preemptible)
  AGENT=("${SQUALL_PYTHON:-$OPT/bin/python}" -m worker
    --instance-name "$NAME" --cores "$(attr squall-cores)" --memory-gib "$(attr squall-memory-gib)"
    --storage-gib "$(attr squall-storage-gib)" --pool "$(attr squall-pool)" --region "$(attr squall-region)"
    "${preemptible[@]}"
    --bootstrap "$(attr squall-kafka-bootstrap)" --kafka-credentials "$ETC/kafka-credentials.json"
    --topic-prefix "$(attr squall-topic-prefix)" --home "$VAR"
    --system-bucket "$(attr_or squall-system-bucket squall-system)"
    --agent-host "$(attr_or squall-agent-host 0.0.0.0)" --agent-port "$port"
    --agent-url "http://$(md instance/network-interfaces/0/ip):$port")
  # a GCS-API server other than Google's (tests, an on-premise store); unset: real GCS
  local storage
  storage=$(attr_or squall-storage-endpoint "")
  [ -n "$storage" ] && AGENT+=(--storage-endpoint "$storage")
  return 0
}

run_agent() {
  local deaths=0 started code
  mkdir -p "$VAR"
  while true; do
    started=$(date +%s)
    set +e
    "${AGENT[@]}"
    code=$?
    set -e
    [ "$code" -eq 0 ] && { log "the agent drained and exited"; return 0; }
    [ $(( $(date +%s) - started )) -ge 60 ] && deaths=0
    deaths=$((deaths + 1))
    [ "$deaths" -gt 5 ] && { log "the agent died $deaths times in a row (last exit $code); giving up"; return 1; }
    log "the agent exited with $code; restarting it (death $deaths in a row)"
    sleep $(( deaths == 1 ? 0 : 1 << (deaths - 2) ))
  done
}

delete_this_instance() {
  # a VM whose agent is gone costs money and does nothing (Hail's workers do the same)
  log "deleting instance $NAME"
  until curl -sSf -X DELETE -H "Authorization: Bearer $(access_token)" \
      "$COMPUTE/compute/v1/projects/$PROJECT/zones/$ZONE/instances/$NAME" >/dev/null; do
    sleep 15
  done
}

main() {
  read_settings
  install_packages
  install_release
  podman_fixes
  write_kafka_credentials
  agent_command
  run_agent || true
  delete_this_instance
}

# sourced (tests): define the steps only
[ "${BASH_SOURCE[0]}" = "$0" ] && main "$@"
return 0 2>/dev/null || true
