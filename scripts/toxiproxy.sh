#!/usr/bin/env bash
# Toxiproxy, a TCP proxy that injects faults (latency, resets, stalls, cut streams) on demand,
# for the chaos harness (stress/chaos_ferretdb.py) and its test: loopback only.
#
#   scripts/toxiproxy.sh install             build toxiproxy-server into the tools cache (reused when current)
#   scripts/toxiproxy.sh run <state-dir> <port>  run the API server in the foreground on 127.0.0.1:<port>
#   scripts/toxiproxy.sh path                print where the binary is (or would be) installed
#
# The harness drives the server through its HTTP API (testkit/toxiproxy.py), so no CLI is built.
# The module path is pinned: `go install ...@latest` resolves to the v2 module's newest version
# the module proxy serves, whose server lives in cmd/server (not cmd/toxiproxy-server, the path
# of the old v1 layout).
#
# Environment: PRIVATA_TOOLS_DIR (default ~/.cache/privata-mongo).
set -euo pipefail

readonly TOXIPROXY_MODULE="github.com/Shopify/toxiproxy/v2"
readonly TOXIPROXY_VERSION="v2.5.0"
readonly TOOLS_DIR="${PRIVATA_TOOLS_DIR:-${HOME}/.cache/privata-mongo}"
readonly BIN_DIR="${TOOLS_DIR}/bin"
readonly TOXIPROXY_BIN="${BIN_DIR}/toxiproxy-server"

die() {
    printf 'toxiproxy.sh: %s\n' "$*" >&2
    exit 1
}

usage() {
    printf 'usage: %s install | run <state-dir> <port> | path\n' "$0" >&2
    exit 2
}

# True when the cached binary runs and reports the pinned version (set at link time below).
binary_is_current() {
    [[ -x "${TOXIPROXY_BIN}" ]] || return 1
    local out
    out="$("${TOXIPROXY_BIN}" -version 2>/dev/null)" || return 1
    grep -q "version ${TOXIPROXY_VERSION}\$" <<<"${out}"
}

# A subshell body: the lock descriptor, the EXIT trap and the Go variables end with it.
cmd_install() (
    mkdir -p "${BIN_DIR}"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"${TOOLS_DIR}/toxiproxy-install.lock"
        flock 9
    fi
    if binary_is_current; then
        printf '%s\n' "${TOXIPROXY_BIN}"
        return 0
    fi
    command -v go >/dev/null 2>&1 ||
        die "the Go toolchain is required to build toxiproxy ${TOXIPROXY_VERSION}, and 'go' is not on PATH; install Go, or run the harness with --faults kill,stop"
    export GOTOOLCHAIN=local GOFLAGS="-buildvcs=false"
    local work
    work="$(mktemp -d "${TOOLS_DIR}/build.XXXXXX")"
    # shellcheck disable=SC2064  # expand now: the trap must remove this very directory
    trap "rm -rf '${work}'" EXIT
    # Without -X the binary reports "git"; the version check above needs the pinned one.
    (cd / && GOBIN="${work}/bin" go install -trimpath \
        -ldflags "-X ${TOXIPROXY_MODULE}.Version=${TOXIPROXY_VERSION}" \
        "${TOXIPROXY_MODULE}/cmd/server@${TOXIPROXY_VERSION}") ||
        die "go install of toxiproxy ${TOXIPROXY_VERSION} failed (see the compiler output above)"
    mv -f "${work}/bin/server" "${TOXIPROXY_BIN}"
    binary_is_current || die "the freshly built ${TOXIPROXY_BIN} does not report ${TOXIPROXY_VERSION}"
    printf '%s\n' "${TOXIPROXY_BIN}"
)

# The API server in the foreground, logging to <state-dir>/toxiproxy.log; testkit/toxiproxy.py
# owns and reaps the process. Proxies are created through the API, each on a loopback port.
cmd_run() {
    local state_dir="$1" port="$2"
    mkdir -p "${state_dir}"
    state_dir="$(cd "${state_dir}" && pwd)"
    [[ -x "${TOXIPROXY_BIN}" ]] || cmd_install >/dev/null
    exec >>"${state_dir}/toxiproxy.log" 2>&1 </dev/null
    printf '== %s: 127.0.0.1:%s\n' "$(date -u +%FT%TZ)" "${port}"
    exec "${TOXIPROXY_BIN}" -host 127.0.0.1 -port "${port}"
}

main() {
    [[ $# -ge 1 ]] || usage
    local command="$1"
    shift
    case "${command}:$#" in
    install:0) cmd_install ;;
    run:2) cmd_run "$1" "$2" ;;
    path:0) printf '%s\n' "${TOXIPROXY_BIN}" ;;
    *) usage ;;
    esac
}

main "$@"
