#!/usr/bin/env bash
# `make run`: local RabbitMQ and PostgreSQL, the schema and demo fixtures, the demo receiver,
# then the worker with console logs. Ctrl-C stops it all, quietly, at any moment.
#
# How Ctrl-C is handled: every step runs in its own session (setsid), so the terminal's SIGINT
# reaches only this script (and make). The trap then stops the step that is running (SIGINT
# to the worker, which finishes what it holds; SIGTERM to the others), then the services, and
# exits 0: make, interrupted too, has nothing to report (a non-zero exit would make it print
# `make: *** [Makefile:..: run] Error N`).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
DEMO_SECRET='whsec_cXVldWUtaG9va3MgZGVtbyBzZWNyZXQsIG5vdCBmb3IgcmVhbCB1c2U='  # public demo secret
OFFSET=${QH_PORT_OFFSET:-0}
# The demo's own ports move with the services' (a second checkout runs beside this one).
DEMO_PORT=$((8099 + OFFSET))
export QUEUE_HOOKS_METRICS_PORT=${QUEUE_HOOKS_METRICS_PORT:-$((9464 + OFFSET))}

started=() # pids (= process group ids) of what we started, newest last

stop_all() {
    trap '' INT TERM HUP # a second Ctrl-C must not cut the clean-up short
    trap - EXIT
    local i pid
    for ((i = ${#started[@]} - 1; i >= 0; i--)); do
        pid=${started[i]}
        # The worker stops on SIGINT as on SIGTERM (contract §7); the rest on SIGTERM.
        kill -TERM -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    deploy/local/services.sh stop run || true
}
trap stop_all EXIT
trap 'exit 0' INT TERM HUP # through the EXIT trap: stopped as asked, nothing failed

# Starts CMD in its own session, in the background; its pid is also its process group id.
launch() {
    setsid "$@" </dev/null &
    started+=($!)
}

# Runs one step to its end. `wait` returns at once on Ctrl-C, so the trap runs at once too.
step() {
    launch "$@"
    local pid=${started[-1]} status=0
    wait "$pid" || status=$?
    unset 'started[-1]'
    return "$status"
}

step deploy/local/services.sh start run
set -a; . .local/run/env; set +a
export QUEUE_HOOKS_LOG_FORMAT=console QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS=true
# The demo receiver lives on 127.0.0.1, which the worker refuses by default (contract §7).

# A second terminal finds the same services through .env (kept if you already have one).
if [[ ! -e .env ]]; then
    { cat .local/run/env; echo "QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS=true"; } > .env
    echo "wrote .env (the local services' URLs) for commands in other terminals"
fi

# The demo schema calls the demo receiver's port (demo.sql says 8099: the default offset).
port_fixture=.local/run/demo-port.sql
cat >"$port_fixture" <<SQL
UPDATE queue_hooks.schemas SET url = 'http://127.0.0.1:$DEMO_PORT/hooks/demo'
WHERE domain_id = 1 AND name = 'Demo receiver' AND url ~ '^http://127\.0\.0\.1:[0-9]+/hooks/demo\$';
SQL
step $BIN/queue-hooks migrate --fixtures deploy/fixtures/demo.sql --fixtures "$port_fixture"

launch $BIN/queue-hooks demo-receiver --port "$DEMO_PORT" --secret "$DEMO_SECRET"

cat <<'MSG'

  queue-hooks is starting. In a second terminal, from this folder:
      .venv/bin/queue-hooks publish --queue 2 --event leaving
  and the demo receiver prints the signed delivery here. Ctrl-C stops it all.

MSG
status=0
step $BIN/queue-hooks run || status=$?
exit "$status" # the worker ended by itself (not by Ctrl-C): its status is make's
