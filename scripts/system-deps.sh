#!/bin/sh
# What `make test` needs from the system, installed when missing (Debian/Ubuntu, root or sudo).
#
#   scripts/system-deps.sh venv    python3 >= 3.11 with venv/ensurepip (Debian: python3-venv)
#   scripts/system-deps.sh test    chromium + chromedriver (browser tests), node + npm (JS client),
#                                  postgresql (the server binaries the pg tests start; Debian puts
#                                  them in /usr/lib/postgresql/<version>/bin, MCHAT_PG_ROOT)
#
# Prints nothing when everything is there. When something is missing it installs it with
# apt-get (as root, or through sudo); where it cannot, it prints ONE line saying what to
# install and exits 1. apt-get's own output goes to a log file named in that line on failure.
set -u

PY="${PY:-python3}"
LOG="${TMPDIR:-/tmp}/mchat-actors-system-deps.log"
what="${1:-test}"

say() { printf '%s\n' "$*" >&2; }

# Debian's server binaries are not on PATH: any /usr/lib/postgresql/<version>/bin/postgres
has_postgres() {
    for bin in "${MCHAT_PG_ROOT:-/usr/lib/postgresql}"/*/bin/postgres; do
        [ -x "$bin" ] && return 0
    done
    return 1
}

missing_packages() {
    case "$what" in
        venv)
            if ! command -v "$PY" >/dev/null 2>&1; then
                say "make: $PY not found: install Python 3.11 or newer (Debian: apt-get install python3 python3-venv)"
                exit 1
            fi
            if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
                say "make: $PY is $("$PY" -c 'import platform; print(platform.python_version())' 2>/dev/null); mchat-actors needs Python 3.11 or newer (make PY=python3.11 ...)"
                exit 1
            fi
            "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1 || printf '%s ' python3-venv
            ;;
        test)
            command -v chromium >/dev/null 2>&1 || printf '%s ' chromium
            command -v chromedriver >/dev/null 2>&1 || printf '%s ' chromium-driver
            command -v node >/dev/null 2>&1 || printf '%s ' nodejs
            command -v npm >/dev/null 2>&1 || printf '%s ' npm
            has_postgres || printf '%s ' postgresql
            ;;
        *)
            say "usage: $0 venv|test"
            exit 2
            ;;
    esac
}

packages="$(missing_packages)" || exit 1
packages="${packages% }"
[ -z "$packages" ] && exit 0

hint="make test needs: $packages. Install them (Debian/Ubuntu: sudo apt-get install -y $packages) and run make test again; make test-fast runs without the browser and node tests"
if ! command -v apt-get >/dev/null 2>&1; then
    say "$hint"
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1 && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
    as_root="sudo"
else
    say "$hint"
    exit 1
fi
say "make: installing $packages with ${as_root:-root} apt-get (log: $LOG)"
# shellcheck disable=SC2086  # word splitting of the package list is wanted
if ! { $as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q \
       && $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $packages; } \
       >"$LOG" 2>&1; then
    say "make: apt-get could not install $packages (see $LOG); install them by hand and run make test again"
    exit 1
fi
exit 0
