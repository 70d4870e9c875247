# Sourced by install-test-tools.sh and install-bench-tools.sh: builds pinned Go tools into the repository's gitignored
# tool cache, `.cache/tools/<name>-<version>/bin/<name>`. Idempotent: a tool whose binary is there is skipped.
# Usage: install_go_tools <label> "<name> <version> <module>"...

find_go() {
  command -v go >/dev/null 2>&1 && return 0
  for candidate in /usr/local/go/bin/go /usr/lib/go/bin/go; do
    if [ -x "$candidate" ]; then PATH="$(dirname "$candidate"):$PATH"; return 0; fi
  done
  echo "" >&2
  echo "############################################################################" >&2
  echo "$1: ERROR: 'go' is not installed (or not on PATH)." >&2
  echo "The tools are built from their Go modules; install Go (https://go.dev/dl or the" >&2
  echo "distribution's golang package) and rerun." >&2
  echo "############################################################################" >&2
  exit 1
}

install_go_tools() {
  local label="$1"
  shift
  local tool name version module dir bin start tmp
  for tool in "$@"; do
    read -r name version module <<<"$tool"
    dir=".cache/tools/${name}-${version}"
    bin="${dir}/bin/${name}"
    [ -x "$bin" ] && continue
    find_go "$label"
    echo "${label}: building ${name} ${version} into ${bin} ($(go version))"
    start=$(date +%s)
    tmp="${dir}/bin.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    # Build into a temporary folder and move into place, so an interrupted build never leaves a half-written binary
    # that a later run would take as installed.
    GOBIN="$(pwd)/${tmp}" go install "${module}@${version}"
    mkdir -p "${dir}/bin"
    mv -f "${tmp}/${name}" "$bin"
    rm -rf "$tmp"
    echo "${label}: ${name} ${version} built in $(( $(date +%s) - start ))s"
  done
}
