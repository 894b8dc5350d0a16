# Shared by scripts/dev and scripts/test: bring a fresh machine to a working state, idempotently.
# Sourced, not run. Installs only what changed since the last run (stamps hold the hashes).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
LOGDIR="$ROOT/.local/logs"
mkdir -p "$LOGDIR"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

find_python() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  die "Python 3.11 is required (azure-functions 1.x; the Functions Python 3.11 runtime)"
}

bootstrap_python() {
  if [ ! -x "$PY" ]; then
    step "creating virtual environment .venv"
    "$(find_python)" -m venv "$VENV" || die "could not create .venv"
  fi
  local want have
  want=$(cat "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" | sha256sum | cut -d' ' -f1)
  have=$(cat "$VENV/.requirements.sha" 2>/dev/null || true)
  if [ "$want" != "$have" ]; then
    step "installing Python packages (requirements-dev.txt)"
    if ! "$PY" -m pip install --disable-pip-version-check -r "$ROOT/requirements-dev.txt" >"$LOGDIR/pip.log" 2>&1; then
      tail -40 "$LOGDIR/pip.log"; die "pip install failed (full log: .local/logs/pip.log)"
    fi
    echo "$want" > "$VENV/.requirements.sha"
  fi
}

bootstrap_node() {
  command -v npm >/dev/null 2>&1 || die "Node.js and npm are required for Azurite (apt-get install nodejs npm)"
  local want have
  want=$(cat "$ROOT/package.json" "$ROOT/package-lock.json" 2>/dev/null | sha256sum | cut -d' ' -f1)
  have=$(cat "$ROOT/node_modules/.stamp" 2>/dev/null || true)
  if [ "$want" != "$have" ] || [ ! -x "$ROOT/node_modules/.bin/azurite" ]; then
    step "installing Azurite (npm)"
    local cmd=(npm install --no-audit --no-fund)
    [ -f "$ROOT/package-lock.json" ] && cmd=(npm ci --no-audit --no-fund)
    if ! (cd "$ROOT" && "${cmd[@]}") >"$LOGDIR/npm.log" 2>&1; then
      tail -40 "$LOGDIR/npm.log"; die "npm install failed (full log: .local/logs/npm.log)"
    fi
    echo "$want" > "$ROOT/node_modules/.stamp"
  fi
}

bootstrap() {
  bootstrap_python
  bootstrap_node
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # wait_port PORT NAME [SECONDS]
  local port=$1 name=$2 limit=${3:-30} i
  for ((i = 0; i < limit * 10; i++)); do
    port_open "$port" && return 0
    sleep 0.1
  done
  die "$name did not start listening on 127.0.0.1:$port (logs: .local/logs/)"
}

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_azurite() {  # start_azurite BLOBPORT QUEUEPORT TABLEPORT
  "$ROOT/node_modules/.bin/azurite" --silent --inMemoryPersistence --disableTelemetry --skipApiVersionCheck \
    --blobHost 127.0.0.1 --queueHost 127.0.0.1 --tableHost 127.0.0.1 \
    --blobPort "$1" --queuePort "$2" --tablePort "$3" \
    >"$LOGDIR/azurite.log" 2>&1 &
  echo $!
}
