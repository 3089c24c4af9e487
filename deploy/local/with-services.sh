#!/usr/bin/env bash
# Run a command against a profile's private PostgreSQL + RabbitMQ:
#
#   deploy/local/with-services.sh run|test|bench -- CMD [ARGS...]
#
# Starts the services, exports QUEUE_HOOKS_AMQP_URL / QUEUE_HOOKS_DATABASE_URL, runs
# CMD, and always stops the services again (also when CMD fails or on Ctrl-C), exiting
# with CMD's exit code. Service chatter goes to stderr so CMD's stdout stays clean.
set -euo pipefail

usage() {
    echo "usage: $0 run|test|bench -- CMD [ARGS...]" >&2
    exit 2
}

[[ $# -ge 3 && $2 == -- ]] || usage
profile=$1
shift 2
services=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/services.sh

# shellcheck disable=SC2317  # only reached through the trap
cleanup() {
    trap - EXIT INT TERM HUP
    "$services" stop "$profile" >&2 || true
}
# Signals go through `exit` so that the EXIT trap does the stopping exactly once.
# (While CMD runs in the foreground bash handles these only after CMD has exited;
# Ctrl-C reaches CMD directly since it shares the terminal's process group.)
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Tests and benchmarks start from an empty broker: queues left by an older version of the
# code (other arguments) would refuse to be declared again.
fresh=0
[[ $profile == run ]] || fresh=1
QH_FRESH_BROKER=$fresh "$services" start "$profile" >&2

while IFS='=' read -r key value; do
    if [[ -n $key ]]; then export "$key=$value"; fi
done < <("$services" env "$profile")

status=0
"$@" || status=$?
exit "$status"
