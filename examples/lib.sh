# Shared by the examples: private dockerds (own data-root, socket and exec-root under $WORK, no networking),
# each stopped by its PID on exit, then $WORK removed. Source it after setting WORK.
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  # dockerd stops the containerd it started before it exits; wait for both.
  for pid in "${PIDS[@]}"; do while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done; done
  grep -o " $WORK[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_dockerd NAME: a private daemon with no networking; sets HOST to its DOCKER_HOST.
# (Not called in $(...): the PID must reach this shell's PIDS for cleanup.)
start_dockerd() {
  local dir="$WORK/$1"; mkdir -p "$dir"
  dockerd --data-root="$dir/data" --exec-root="$dir/exec" --pidfile="$dir/docker.pid" --host="unix://$dir/docker.sock" \
    --bridge=none --iptables=false --ip6tables=false --ip-masq=false --log-level=warn >"$dir/dockerd.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 150); do
    docker -H "unix://$dir/docker.sock" version >/dev/null 2>&1 && { HOST="unix://$dir/docker.sock"; return; }
    sleep 0.2
  done
  echo "dockerd $1 did not start; see $dir/dockerd.log" >&2; exit 1
}

# demo_image HOST TAG BASE FILE CONTENT: a one-file layer on BASE (docker build, legacy builder: no containers).
demo_image() {
  local ctx; ctx=$(mktemp -d "$WORK/ctx-XXXX")
  printf '%s\n' "$5" >"$ctx/$4"
  printf 'FROM %s\nCOPY %s /%s\n' "$3" "$4" "$4" >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker -H "$1" build -q -t "$2" "$ctx" >/dev/null
  rm -rf "$ctx"
}
