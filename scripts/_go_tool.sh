# Shared by scripts/ferretdb.sh and scripts/toxiproxy.sh: a Go tool pinned to one version, built
# once into the tools cache with `go install` and reused while it reports that version.
#
# A script sourcing this sets TOOL (its name in messages), TOOL_BIN (the cached binary) and
# TOOLS_DIR, and defines two functions:
#   tool_is_current  true when TOOL_BIN runs and reports the pinned version;
#   tool_build WORK  builds the binary into WORK/bin/<anything> and prints that path.
# shellcheck shell=bash

die() {
    printf '%s.sh: %s\n' "${TOOL}" "$*" >&2
    exit 1
}

# A subshell body: the lock descriptor, the EXIT trap and the Go variables end with it (a server
# that `run` execs after an install must not inherit the lock).
go_tool_install() (
    mkdir -p "$(dirname "${TOOL_BIN}")"
    # Two test sessions may install at once: serialise them (flock is in util-linux).
    if command -v flock >/dev/null 2>&1; then
        exec 9>"${TOOLS_DIR}/${TOOL}-install.lock"
        flock 9
    fi
    if tool_is_current; then
        printf '%s\n' "${TOOL_BIN}"
        return 0
    fi
    command -v go >/dev/null 2>&1 || die "${GO_MISSING:-the Go toolchain is required to build ${TOOL}, and 'go' is not on PATH}"
    export GOTOOLCHAIN=local
    local work built
    work="$(mktemp -d "${TOOLS_DIR}/build.XXXXXX")"
    # shellcheck disable=SC2064  # expand now: the trap must remove this very directory
    trap "rm -rf '${work}'" EXIT
    built="$(tool_build "${work}")" || die "go install of ${TOOL} failed (see the compiler output above)"
    mv -f "${built}" "${TOOL_BIN}"
    tool_is_current || die "the freshly built ${TOOL_BIN} does not report the pinned version"
    printf '%s\n' "${TOOL_BIN}"
)

# Redirect this shell's output to <state-dir>/<tool>.log (appended) and note the start; the
# caller then execs the server in the foreground.
log_to_state_dir() {
    local state_dir="$1" port="$2"
    exec >>"${state_dir}/${TOOL}.log" 2>&1 </dev/null
    printf '== %s: 127.0.0.1:%s\n' "$(date -u +%FT%TZ)" "${port}"
}
