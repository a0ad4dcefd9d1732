#!/usr/bin/env bash
# Provision rootful podman for squall workers on Debian 12 (run as root; idempotent).
#
# What it does (each step's comment below says which failure on these machines it fixes):
#   1. installs podman (with Recommends: crun, conmon, netavark, iptables) and mmdebstrap;
#   2. empties cgroup2 of controllers (crun refuses hybrid mode otherwise) or falls back to runc;
#   3. writes containers.conf with rlimits no higher than this process's hard limits;
#   4. installs the conmon-oomfix wrapper so State.OOMKilled is reported;
#   5. builds the local base images without a registry:
#        localhost/busybox:latest            busybox-static rootfs (~1 s)
#        localhost/debian-python3:bookworm   mmdebstrap rootfs, cached as a `podman save` tar,
#                                            also tagged :latest (so the bare name works)
#                                            under $CACHE_DIR (second run: ~2 s instead of ~25 s)
#   6. reserves host ids for the jobs' user namespaces (a `squall` range in /etc/subuid and
#      /etc/subgid: 16384 slots of 65536 ids from 1000000000, above useradd's default ranges)
#      and installs nftables for the job firewall;
#   7. smoke-tests a container and the OOM report;
#   8. optionally starts the REST API service: START_SERVICE=1 PODMAN_SOCK=/run/squall/podman.sock
#      (pid in the socket's directory as service.pid, log as service.log).
#
# Environment:
#   IMAGES         which base images to build: "busybox python" (default)
#   CACHE_DIR      image tar cache, default ~/.cache/squall/images
#   START_SERVICE  1 to start `podman system service` on PODMAN_SOCK
#   PODMAN_SOCK    API socket path, default /run/squall/podman.sock
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

IMAGES=${IMAGES:-"busybox python"}
CACHE_DIR=${CACHE_DIR:-$HOME/.cache/squall/images}
SOCK=${PODMAN_SOCK:-/run/squall/podman.sock}
PY_IMAGE=localhost/debian-python3:bookworm
PY_LATEST=localhost/debian-python3:latest
BB_IMAGE=localhost/busybox:latest
T0=$(date +%s%N)
step() { printf '[%6.1fs] %s\n' "$(( ($(date +%s%N) - T0) / 1000000 ))e-3" "$*"; }
die() { echo "setup.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (podman is used rootful)"

# The Debian mirror apt is configured with (deb822 .sources or one-line .list), for `codename`.
apt_mirror() {
  local codename=$1 f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk -v c="$codename" 'BEGIN { RS = ""; FS = "\n" } {
        uris = ""; suites = "";
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
          if ($i ~ /^Suites:/) { suites = " " $i " " }
        }
        if (uris != "" && suites ~ (" " c " ")) { split(uris, u, /[ \t]+/); print u[1]; exit }
      }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri=$(awk -v c="$codename" '$1 == "deb" {
        i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == c) { print $i; exit }
      }' "$f")
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  return 1
}

# 1. packages
if ! command -v podman >/dev/null || ! command -v mmdebstrap >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq podman mmdebstrap >/dev/null
fi
step "packages: $(podman --version)"

# 2. crun refuses hybrid cgroups while cgroup2 owns a controller (hugetlb here): move those
#    controllers to v1 hierarchies (not persistent: redone at every boot); else fall back to runc.
RUNTIME=crun
if [ -f /sys/fs/cgroup/unified/cgroup.controllers ]; then
  for c in $(cat /sys/fs/cgroup/unified/cgroup.controllers); do
    mkdir -p "/sys/fs/cgroup/$c"
    mountpoint -q "/sys/fs/cgroup/$c" || mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" || true
  done
  if [ -s /sys/fs/cgroup/unified/cgroup.controllers ]; then
    command -v runc >/dev/null || apt-get install -y -qq --no-install-recommends runc >/dev/null
    RUNTIME=runc
  fi
fi
step "runtime: $RUNTIME"

# 3. rlimits: podman 4.3 asks for nofile/nproc 1048576, which needs CAP_SYS_RESOURCE (absent here).
NOFILE=$(ulimit -Hn); NPROC=$(ulimit -Hu); PIDMAX=$(cat /proc/sys/kernel/pid_max)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
if [ "$NPROC" = unlimited ] || [ "$NPROC" -gt "$PIDMAX" ]; then NPROC=$PIDMAX; fi

# 4. conmon 2.1.x writes its OOM marker to ./oom but podman >= 4.2 no longer starts it in the
#    bundle dir, so State.OOMKilled is always false. Start conmon in the bundle dir.
cat > /usr/local/bin/conmon-oomfix <<'EOF'
#!/bin/sh
# squall: run conmon inside its --bundle directory so its "oom" marker lands where podman looks.
prev=
for a in "$@"; do
  case "$prev" in -b|--bundle) cd "$a" 2>/dev/null; break ;; esac
  case "$a" in --bundle=*) cd "${a#--bundle=}" 2>/dev/null; break ;; esac
  prev=$a
done
exec /usr/bin/conmon "$@"
EOF
chmod 755 /usr/local/bin/conmon-oomfix

mkdir -p /etc/containers
cat > /etc/containers/containers.conf <<EOF
# written by squall deploy/podman/setup.sh
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]
pids_limit = 2048

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "$RUNTIME"
conmon_path = ["/usr/local/bin/conmon-oomfix"]
EOF
cat > /etc/containers/storage.conf <<'EOF'
# written by squall deploy/podman/setup.sh: overlay on ext4 with native diff
[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
EOF
step "containers.conf written (nofile=$NOFILE nproc=$NPROC runtime=$RUNTIME)"

# 5. base images, built locally (no registry is reachable)
BUILD=$(mktemp -d); chmod 755 "$BUILD"   # apt-get download runs as _apt
trap 'rm -rf "$BUILD"' EXIT
mkdir -p "$CACHE_DIR"

if [[ " $IMAGES " == *" busybox "* ]] && ! podman image exists "$BB_IMAGE"; then
  ( cd "$BUILD" && apt-get download -qq busybox-static >/dev/null && dpkg -x busybox-static_*.deb x
    mkdir -p r/bin r/etc r/tmp r/proc r/sys r/dev r/io && cp x/bin/busybox r/bin/ && chmod 1777 r/tmp
    for a in $(r/bin/busybox --list); do [ -e "r/bin/$a" ] || ln -s busybox "r/bin/$a"; done
    echo 'root:x:0:0:root:/root:/bin/sh' > r/etc/passwd; echo 'root:x:0:' > r/etc/group
    echo 'nobody:x:65534:65534:nobody:/:/bin/sh' >> r/etc/passwd; echo 'nogroup:x:65534:' >> r/etc/group
    tar -C r -c . | podman import -q --change 'ENV=PATH=/bin' --change 'CMD=["/bin/sh"]' - "$BB_IMAGE" >/dev/null )
  step "image $BB_IMAGE built"
fi

if [[ " $IMAGES " == *" python "* ]] && ! podman image exists "$PY_IMAGE"; then
  PY_TAR="$CACHE_DIR/debian-python3-bookworm.tar"
  if [ -s "$PY_TAR" ] && podman load -q -i "$PY_TAR" >/dev/null 2>&1 && podman image exists "$PY_IMAGE"; then
    step "image $PY_IMAGE loaded from $PY_TAR"
  else
    MIRROR=$(apt_mirror bookworm) || die "no bookworm mirror in /etc/apt/sources.list*; configure apt first"
    mmdebstrap --quiet --variant=essential --include=python3 \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      bookworm "$BUILD/rootfs.tar" "$MIRROR"
    podman import -q --change 'ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD=["/bin/bash"]' "$BUILD/rootfs.tar" "$PY_IMAGE" >/dev/null
    podman save -q -o "$PY_TAR.tmp" "$PY_IMAGE" && mv "$PY_TAR.tmp" "$PY_TAR"
    step "image $PY_IMAGE built from $MIRROR and cached in $PY_TAR"
  fi
fi

# the bare name (`localhost/debian-python3`) means :latest to podman: tag it, idempotently
if [[ " $IMAGES " == *" python "* ]] && ! podman image exists "$PY_LATEST"; then
  podman tag "$PY_IMAGE" "$PY_LATEST"
  step "image $PY_IMAGE also tagged $PY_LATEST"
fi

# 6. user namespaces for jobs: uid 0 in a job is an unprivileged host id of its own slot
#    (worker/userns.py reads this range); the job firewall (worker/job_firewall.py) needs nft
SUBID_START=${SUBID_START:-1000000000}; SUBID_COUNT=${SUBID_COUNT:-1073741824}
for f in /etc/subuid /etc/subgid; do
  touch "$f"
  grep -q '^squall:' "$f" || echo "squall:$SUBID_START:$SUBID_COUNT" >> "$f"
done
command -v nft >/dev/null || apt-get install -y -qq nftables >/dev/null
step "job sandbox: $(grep '^squall:' /etc/subuid) in /etc/subuid and /etc/subgid; $(nft --version)"

# 7. smoke test, including the OOM report (exit 137 and OOMKilled=true)
podman run --rm --network none "$BB_IMAGE" true
podman rm -f squall-setup-oom >/dev/null 2>&1 || true
podman run --name squall-setup-oom --network none --memory 32m "$BB_IMAGE" \
  sh -c 'x=$(head -c 100000000 /dev/zero | tr "\0" a)' >/dev/null 2>&1 || true
OOM=$(podman inspect squall-setup-oom --format '{{.State.ExitCode}}/{{.State.OOMKilled}}')
podman rm squall-setup-oom >/dev/null
[ "$OOM" = "137/true" ] || die "OOM smoke test failed: expected 137/true, got $OOM (is conmon-oomfix in use?)"
step "smoke test ok (OOM -> $OOM)"

# 8. optional REST API service; it inherits this shell's hard rlimits, which containers.conf matches
if [ "${START_SERVICE:-0}" = 1 ]; then
  RUN_DIR=${SOCK%/*}
  mkdir -p "$RUN_DIR"
  if ! curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; then
    rm -f "$SOCK"
    nohup podman system service --time=0 "unix://$SOCK" >"$RUN_DIR/service.log" 2>&1 &
    echo $! > "$RUN_DIR/service.pid"
    for _ in $(seq 100); do
      curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1 && break
      sleep 0.1
    done
    curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1 \
      || die "podman API service did not answer on $SOCK; see $RUN_DIR/service.log"
  fi
  step "API service on unix://$SOCK (pid $(cat "$RUN_DIR/service.pid" 2>/dev/null || echo '?'))"
fi
step "done"
