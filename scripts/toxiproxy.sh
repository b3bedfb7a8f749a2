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

readonly TOOL="toxiproxy" TOOL_BIN="${TOXIPROXY_BIN}"
readonly GO_MISSING="the Go toolchain is required to build toxiproxy ${TOXIPROXY_VERSION}, and 'go' is not on PATH; install Go, or run the harness with --faults kill,stop"
# shellcheck source=scripts/_go_tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/_go_tool.sh"

usage() {
    printf 'usage: %s install | run <state-dir> <port> | path\n' "$0" >&2
    exit 2
}

# True when the cached binary runs and reports the pinned version (set at link time below).
tool_is_current() {
    [[ -x "${TOXIPROXY_BIN}" ]] || return 1
    local out
    out="$("${TOXIPROXY_BIN}" -version 2>/dev/null)" || return 1
    grep -q "version ${TOXIPROXY_VERSION}\$" <<<"${out}"
}

# Without -X the binary reports "git"; the version check above needs the pinned one.
tool_build() {
    local work="$1"
    export GOFLAGS="-buildvcs=false"
    (cd / && GOBIN="${work}/bin" go install -trimpath \
        -ldflags "-X ${TOXIPROXY_MODULE}.Version=${TOXIPROXY_VERSION}" \
        "${TOXIPROXY_MODULE}/cmd/server@${TOXIPROXY_VERSION}") >&2 || return 1
    printf '%s\n' "${work}/bin/server"
}

cmd_install() {
    go_tool_install
}

# The API server in the foreground, logging to <state-dir>/toxiproxy.log; testkit/toxiproxy.py
# owns and reaps the process. Proxies are created through the API, each on a loopback port.
cmd_run() {
    local state_dir="$1" port="$2"
    mkdir -p "${state_dir}"
    state_dir="$(cd "${state_dir}" && pwd)"
    [[ -x "${TOXIPROXY_BIN}" ]] || cmd_install >/dev/null
    log_to_state_dir "${state_dir}" "${port}"
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
