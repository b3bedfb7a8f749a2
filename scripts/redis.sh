#!/usr/bin/env bash
# redis-server for the test suites: loopback only, no persistence, one instance per state dir.
#
#   scripts/redis.sh install             apt-get install redis-server when it is missing
#   scripts/redis.sh start <state-dir>   start on a free 127.0.0.1 port; prints the redis:// URI
#   scripts/redis.sh stop <state-dir>    stop the server started with that state dir
#   scripts/redis.sh run <state-dir> <port>  run in the foreground (log in the state dir)
#
# Environment: PYTHON (default python3; only used to find a free port),
# REDIS_START_TIMEOUT seconds (default 30).
set -euo pipefail

readonly PYTHON="${PYTHON:-python3}"

die() {
    printf 'redis.sh: %s\n' "$*" >&2
    exit 1
}

# True while $1 is a live process (a zombie left for an absent reaper counts as gone).
alive() {
    local stat
    kill -0 "$1" 2>/dev/null || return 1
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
    stat="${stat##*) }"
    [[ "${stat%% *}" != "Z" ]]
}

usage() {
    printf 'usage: %s install | start <state-dir> | stop <state-dir> | run <state-dir> <port>\n' "$0" >&2
    exit 2
}

cmd_install() {
    if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
        command -v redis-server
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 ||
        die "redis-server is not installed and apt-get is not available; install redis-server (>= 6) with your package manager"
    local sudo=()
    if [[ "$(id -u)" -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 ||
            die "installing redis-server needs root: run 'apt-get install -y redis-server' as root"
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    # The package lists may be missing or stale on a fresh machine: update once and retry.
    "${sudo[@]}" apt-get install -y -qq redis-server >&2 ||
        { "${sudo[@]}" apt-get update -qq >&2 && "${sudo[@]}" apt-get install -y -qq redis-server >&2; } ||
        die "apt-get install redis-server failed (see the apt output above)"
    command -v redis-server
}

free_port() {
    "${PYTHON}" - <<'EOF'
import socket

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
EOF
}

wait_ping() {
    local port="$1" deadline=$((SECONDS + ${REDIS_START_TIMEOUT:-30}))
    while ((SECONDS <= deadline)); do
        if [[ "$(redis-cli -h 127.0.0.1 -p "${port}" ping 2>/dev/null)" == "PONG" ]]; then
            return 0
        fi
        alive "$2" || return 1
        sleep 0.05
    done
    return 1
}

# The server in the foreground, logging to <state-dir>/redis.log; `start` and the Python helper
# (testkit/redis.py, which owns and reaps the process) both run it this way.
cmd_run() {
    local state_dir="$1" port="$2"
    mkdir -p "${state_dir}"
    state_dir="$(cd "${state_dir}" && pwd)"
    command -v redis-server >/dev/null 2>&1 || cmd_install >/dev/null
    exec >>"${state_dir}/redis.log" 2>&1 </dev/null
    printf '== %s: 127.0.0.1:%s\n' "$(date -u +%FT%TZ)" "${port}"
    # Loopback only, no persistence (no RDB snapshots, no AOF), no config file.
    exec redis-server \
        --bind 127.0.0.1 \
        --port "${port}" \
        --protected-mode yes \
        --save "" \
        --appendonly no \
        --daemonize no \
        --dir "${state_dir}" \
        --logfile "" \
        --loglevel warning
}

cmd_start() {
    local state_dir="$1"
    mkdir -p "${state_dir}"
    state_dir="$(cd "${state_dir}" && pwd)"
    local pid_file="${state_dir}/redis.pid"
    if [[ -f "${pid_file}" ]] && alive "$(cat "${pid_file}")"; then
        die "redis-server already runs for ${state_dir} (pid $(cat "${pid_file}")); stop it first"
    fi
    command -v redis-server >/dev/null 2>&1 || cmd_install >/dev/null
    local _ port pid
    for _ in 1 2 3; do # another process may take the free port first: retry on a new one
        port="$(free_port)"
        setsid "${BASH:-bash}" "$0" run "${state_dir}" "${port}" </dev/null >/dev/null 2>&1 &
        pid=$!
        printf '%s\n' "${pid}" >"${pid_file}"
        if wait_ping "${port}" "${pid}"; then
            printf 'redis://127.0.0.1:%s/0\n' "${port}" | tee "${state_dir}/redis.uri"
            return 0
        fi
        kill "${pid}" 2>/dev/null || true
        wait "${pid}" 2>/dev/null || true
        rm -f "${pid_file}"
    done
    tail -n 20 "${state_dir}/redis.log" >&2 || true
    die "redis-server did not answer PING on 127.0.0.1 (log: ${state_dir}/redis.log)"
}

cmd_stop() {
    local state_dir="$1" pid_file="$1/redis.pid" pid _
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
    rm -f "${pid_file}" "${state_dir}/redis.uri"
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
    *) usage ;;
    esac
}

main "$@"
