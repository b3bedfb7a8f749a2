#!/usr/bin/env bash
# FerretDB (SQLite handler) for the test suites: a real MongoDB wire-protocol server on loopback.
#
#   scripts/ferretdb.sh install             build FerretDB into the tools cache (reused when current)
#   scripts/ferretdb.sh start <state-dir>   start on a free 127.0.0.1 port; prints the mongodb:// URI
#   scripts/ferretdb.sh stop <state-dir>    stop the server started with that state dir
#   scripts/ferretdb.sh run <state-dir> <port>  run in the foreground (log in the state dir)
#   scripts/ferretdb.sh path                print where the binary is (or would be) installed
#
# Why not `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2`: that form first asks the
# module proxy for the module's whole version list (a deprecation check), which the proxy reachable
# from here refuses with 403; and where it works, the binary panics at start-up, because the module
# ships without build/version/version.txt (FerretDB's own `task gen-version` writes it). So we
# download that exact module version (checksum-verified against the sum database), write
# version.txt into a copy of it and `go install ./cmd/ferretdb` there: the same source, built
# against FerretDB's own go.sum.
#
# Environment: PRIVATA_TOOLS_DIR (default ~/.cache/privata-mongo), PYTHON (default python3),
# FERRETDB_START_TIMEOUT seconds (default 60).
set -euo pipefail

readonly FERRETDB_MODULE="github.com/FerretDB/FerretDB"
readonly FERRETDB_VERSION="v1.24.2"
readonly TOOLS_DIR="${PRIVATA_TOOLS_DIR:-${HOME}/.cache/privata-mongo}"
readonly BIN_DIR="${TOOLS_DIR}/bin"
readonly FERRETDB_BIN="${BIN_DIR}/ferretdb"
readonly PYTHON="${PYTHON:-python3}"

readonly TOOL="ferretdb" TOOL_BIN="${FERRETDB_BIN}"
readonly GO_MISSING="the Go toolchain (go >= 1.24) is required to build FerretDB ${FERRETDB_VERSION}, and 'go' is not on PATH; install Go, or use --backend mongomock"
# shellcheck source=scripts/_go_tool.sh
source "$(dirname "${BASH_SOURCE[0]}")/_go_tool.sh"

# True while $1 is a live process (a zombie left for an absent reaper counts as gone).
alive() {
    local stat
    kill -0 "$1" 2>/dev/null || return 1
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
    stat="${stat##*) }"
    [[ "${stat%% *}" != "Z" ]]
}

usage() {
    printf 'usage: %s install | start <state-dir> | stop <state-dir> | run <state-dir> <port> | path\n' "$0" >&2
    exit 2
}

# True when the cached binary runs and reports the pinned version.
tool_is_current() {
    [[ -x "${FERRETDB_BIN}" ]] || return 1
    local out
    out="$("${FERRETDB_BIN}" --version 2>/dev/null)" || return 1
    grep -qx "version: ${FERRETDB_VERSION}" <<<"${out}"
}

# The module at the pinned version, checksum-verified, with version.txt written into a copy of it.
tool_build() {
    local work="$1" info src_dir
    export GOFLAGS="-buildvcs=false -mod=readonly"
    info="$(cd / && go mod download -json "${FERRETDB_MODULE}@${FERRETDB_VERSION}")" ||
        die "could not download ${FERRETDB_MODULE}@${FERRETDB_VERSION} through the Go module proxy"
    src_dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"${info}")"
    [[ -n "${src_dir}" && -d "${src_dir}" ]] || die "go mod download printed no module directory"
    cp -R "${src_dir}" "${work}/src"
    chmod -R u+w "${work}/src"
    printf '%s\n' "${FERRETDB_VERSION}" >"${work}/src/build/version/version.txt"
    printf 'privata-mongo\n' >"${work}/src/build/version/package.txt"
    (cd "${work}/src" && GOBIN="${work}/bin" go install -trimpath ./cmd/ferretdb) >&2 || return 1
    printf '%s\n' "${work}/bin/ferretdb"
}

cmd_install() {
    go_tool_install
}

# A TCP port that was free on 127.0.0.1 a moment ago (start retries if someone takes it first).
free_port() {
    "${PYTHON}" - <<'EOF'
import socket

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
EOF
}

# Exit 0 once a MongoDB `hello` on 127.0.0.1:$1 answers ok: 1 (stdlib only: an OP_MSG by hand);
# exit 1 when server process $2 is gone or $3 seconds have passed.
wait_hello() {
    "${PYTHON}" - "$1" "$2" "$3" <<'EOF'
import pathlib
import socket
import struct
import sys
import time

port, pid = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + float(sys.argv[3])


def server_alive() -> bool:
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"



def cstring(s: str) -> bytes:
    return s.encode() + b"\x00"


body = b"\x10" + cstring("hello") + struct.pack("<i", 1) + b"\x02" + cstring("$db")
body += struct.pack("<i", 6) + cstring("admin")
doc = struct.pack("<i", len(body) + 5) + body + b"\x00"
payload = struct.pack("<I", 0) + b"\x00" + doc
msg = struct.pack("<iiii", 16 + len(payload), 1, 0, 2013) + payload


def recv_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


while True:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(msg)
            (length,) = struct.unpack("<i", recv_exact(s, 4))
            reply = recv_exact(s, length - 4)
        if b"\x01ok\x00" + struct.pack("<d", 1.0) in reply:
            sys.exit(0)
    except OSError:
        pass
    if time.monotonic() > deadline or not server_alive():
        sys.exit(1)
    time.sleep(0.05)
EOF
}

# The server in the foreground, logging to <state-dir>/ferretdb.log; `start` and the Python
# helper (testkit/ferretdb.py, which owns and reaps the process) both run it this way.
cmd_run() {
    local state_dir="$1" port="$2"
    mkdir -p "${state_dir}/data"
    state_dir="$(cd "${state_dir}" && pwd)"
    [[ -x "${FERRETDB_BIN}" ]] || cmd_install >/dev/null
    log_to_state_dir "${state_dir}" "${port}"
    # Loopback TCP only: no Unix socket, no proxy, no debug/metrics HTTP listener, no telemetry.
    exec "${FERRETDB_BIN}" \
        --handler=sqlite \
        --sqlite-url="file:${state_dir}/data/" \
        --listen-addr="127.0.0.1:${port}" \
        --listen-unix= \
        --proxy-addr= \
        --debug-addr=- \
        --telemetry=disable \
        --log-level=warn \
        --state-dir="${state_dir}"
}

cmd_start() {
    local state_dir="$1"
    mkdir -p "${state_dir}"
    state_dir="$(cd "${state_dir}" && pwd)"
    local pid_file="${state_dir}/ferretdb.pid"
    if [[ -f "${pid_file}" ]] && alive "$(cat "${pid_file}")"; then
        die "FerretDB already runs for ${state_dir} (pid $(cat "${pid_file}")); stop it first"
    fi
    [[ -x "${FERRETDB_BIN}" ]] || cmd_install >/dev/null
    local _ port pid
    for _ in 1 2 3; do # another process may take the free port first: retry on a new one
        port="$(free_port)"
        # setsid: the server has its own session, so the caller's terminal signals miss it and
        # `stop` signals exactly this process.
        setsid "${BASH:-bash}" "$0" run "${state_dir}" "${port}" </dev/null >/dev/null 2>&1 &
        pid=$!
        printf '%s\n' "${pid}" >"${pid_file}"
        if wait_hello "${port}" "${pid}" "${FERRETDB_START_TIMEOUT:-60}"; then
            printf 'mongodb://127.0.0.1:%s/\n' "${port}" | tee "${state_dir}/ferretdb.uri"
            return 0
        fi
        kill "${pid}" 2>/dev/null || true
        wait "${pid}" 2>/dev/null || true
        rm -f "${pid_file}"
    done
    tail -n 20 "${state_dir}/ferretdb.log" >&2 || true
    die "FerretDB did not answer hello on 127.0.0.1 (log: ${state_dir}/ferretdb.log)"
}

cmd_stop() {
    local state_dir="$1" pid_file="$1/ferretdb.pid" pid _
    [[ -f "${pid_file}" ]] || return 0
    pid="$(cat "${pid_file}")"
    if kill "${pid}" 2>/dev/null; then
        for _ in $(seq 1 100); do
            alive "${pid}" || break
            sleep 0.1
        done
        if alive "${pid}"; then
            kill -9 "${pid}" 2>/dev/null || true
        fi
    fi
    rm -f "${pid_file}" "${state_dir}/ferretdb.uri"
}

main() {
    [[ $# -ge 1 ]] || usage
    local command="$1"
    shift
    case "${command}:$#" in
    install:0) cmd_install ;;
    start:1) cmd_start "$1" ;;
    run:2) cmd_run "$1" "$2" ;;
    stop:1) cmd_stop "$1" ;;
    path:0) printf '%s\n' "${FERRETDB_BIN}" ;;
    *) usage ;;
    esac
}

main "$@"
