#!/usr/bin/env bash
# `make run`: local RabbitMQ and PostgreSQL, the schema and demo fixtures, the demo receiver,
# the admin API with a demo token, then the worker with console logs. Ctrl-C stops it all,
# quietly, at any moment. `make cluster` runs it with QH_PROFILE=cluster: three RabbitMQ
# nodes, PostgreSQL primary + standby (docs/cluster.md).
#
# How Ctrl-C is handled. The terminal sends SIGINT to its foreground process group: make and
# this script. Everything the script starts runs in a session of its own (setsid), so the
# signal reaches nothing else: no Python prints a KeyboardInterrupt traceback, no RabbitMQ
# node dies in the middle of its boot. Between the steps only shell builtins run in the
# terminal's process group, for the same reason. The trap notes the request (so a child
# started at that very moment is still recorded in `started`) and sends SIGTERM to the newest
# child: a signal that comes just before `wait` begins does not interrupt it (bash runs the
# trap first, then waits on), so the child must end for the wait to. The script acts on the
# request at the next step boundary: it stops what it started, newest first (SIGTERM: the
# worker finishes what it holds, contract §7; a services.sh still starting stops what it
# launched), then the services, and exits 0, so make, interrupted too, has nothing to report
# (a non-zero exit would make it print `make: *** [Makefile:..: run] Error N`).
#
# The stop asks the kernel (/proc), not bash, whether a child is still there. A child forked
# a moment before Ctrl-C may not have reached setsid yet: still in the terminal's process
# group, it dies of the same SIGINT. If it ends while the script is in `wait` as the trapped
# signal comes in, bash (5.2) loses its exit status: waitchld reaps it, then jumps out of
# `wait` for the trap before recording it. For bash that child then runs forever, and `wait`
# on it would block for as long as any other child lives: make would never return.
stopping=0
started=() # pids (= session and process group ids) of what we started, newest last
on_signal() {
    stopping=1
    if ((${#started[@]})); then kill -TERM "${started[-1]}" 2>/dev/null || true; fi
}
trap on_signal INT TERM HUP
set -euo pipefail
cd "${0%/*}/../.."
BIN=.venv/bin
PROFILE=${QH_PROFILE:-run}
STATE=.local/$PROFILE
DEMO_SECRET='whsec_cXVldWUtaG9va3MgZGVtbyBzZWNyZXQsIG5vdCBmb3IgcmVhbCB1c2U='  # public demo secret
OFFSET=${QH_PORT_OFFSET:-0}
# The demo's own ports move with the services' (a second checkout runs beside this one).
DEMO_PORT=$((8099 + OFFSET))
export QUEUE_HOOKS_METRICS_PORT=${QUEUE_HOOKS_METRICS_PORT:-$((9464 + OFFSET))}
export QUEUE_HOOKS_API_PORT=${QUEUE_HOOKS_API_PORT:-$((8080 + OFFSET))}

stop_all() {
    local rc=$? i pid
    # Inherited: a second Ctrl-C cuts nothing short, the stop included; nor does a terminal
    # (or a pipe) that has gone away: then the lines are lost, not the stop.
    trap '' INT TERM HUP PIPE
    trap - EXIT
    for ((i = ${#started[@]} - 1; i >= 0; i--)); do
        pid=${started[i]}
        child_state "$pid"
        if [[ $REPLY ]]; then # still ours: running, or ended and not yet reaped
            # Each stops what it started (the worker's supervisor its children, services.sh
            # a RabbitMQ it was booting).
            kill -TERM "$pid" 2>/dev/null || true
            stopped_within "$pid" 45 || {
                echo "pid $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)) did not stop within 45 s of SIGTERM: SIGKILL"
                kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            }
            # Reaped quietly (bash's "Terminated"); never for a child already gone, whose end
            # bash may have lost (see above).
            wait "$pid" 2>/dev/null || true
        fi
        # Then whatever is left in its process group goes too.
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    deploy/local/services.sh stop "$PROFILE" || true
    if ((stopping)); then exit 0; fi # stopped as asked: nothing failed
    exit "$rc"
}
trap stop_all EXIT

# Sets REPLY to the state of our child $1 as the kernel sees it (R, S, ...; Z: ended, not yet
# reaped), or to nothing once $1 is no child of this shell (gone, or its pid reused).
child_state() {
    local stat
    REPLY=
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
    stat=${stat##*) } # the fields after "pid (name)": state, parent, ...
    if [[ ${stat#* } == "$$ "* ]]; then REPLY=${stat%% *}; fi
}

# Whether our child $1 ends within $2 seconds (the worker's own grace is 30 s, contract §7):
# the stop must end even if one child does not heed its SIGTERM. (SIGINT is ignored by then.)
stopped_within() {
    local deadline=$((SECONDS + $2))
    while child_state "$1" && [[ $REPLY && $REPLY != Z ]]; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# Leaves (through stop_all) once a stop was asked for.
checkpoint() { if ((stopping)); then exit 0; fi; }

# Starts CMD in its own session, in the background; its pid is also its process group id.
launch() {
    setsid "$@" </dev/null &
    started+=($!)
    checkpoint
}

# Runs one step to its end (or until a stop is asked for).
step() {
    launch "$@"
    local pid=${started[-1]} status=0
    # (2>/dev/null: bash's "Terminated" for a child the trap stopped; make shows its output.)
    wait "$pid" 2>/dev/null || status=$?
    checkpoint
    unset 'started[-1]'
    return "$status"
}

checkpoint
step deploy/local/services.sh start "$PROFILE"
set -a; . "$STATE/env"; set +a
export QUEUE_HOOKS_LOG_FORMAT=console QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS=true
# The demo receiver lives on 127.0.0.1, which the worker refuses by default (contract §7).

# A second terminal finds the same services through .env: written when there is none, and
# rewritten while it is the one we wrote (the services' URLs differ by profile and offset).
DOTENV_MARK="# written by deploy/local/run-demo.sh (make run, make cluster): rewritten while this line stays"
mark=
if [[ -e .env ]]; then read -r mark <.env || true; fi
mapfile -t urls <"$STATE/env"
if [[ ! -e .env || $mark == "$DOTENV_MARK" ]]; then
    printf '%s\n' "$DOTENV_MARK" "${urls[@]}" "QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS=true" >.env
    echo "wrote .env (the $PROFILE services' URLs) for commands in other terminals"
else
    mapfile -t kept <.env
    if [[ " ${kept[*]} " != *" ${urls[0]} "* ]]; then
        echo "kept your .env, which names other services: in another terminal, first"
        echo "      set -a; . $STATE/env; set +a"
    fi
fi

# The demo schema calls the demo receiver's port (demo.sql says 8099: the default offset).
port_fixture=$STATE/demo-port.sql
printf '%s\n' "UPDATE queue_hooks.schemas SET url = 'http://127.0.0.1:$DEMO_PORT/hooks/demo'" \
    "WHERE domain_id = 1 AND name = 'Demo receiver' AND url ~ '^http://127\.0\.0\.1:[0-9]+/hooks/demo\$';" \
    >"$port_fixture"
step $BIN/queue-hooks migrate --fixtures deploy/fixtures/demo.sql --fixtures "$port_fixture"

launch $BIN/queue-hooks demo-receiver --port "$DEMO_PORT" --secret "$DEMO_SECRET"

# The admin API and page (issue 11), with a demo admin token of the demo's domain.
launch $BIN/queue-hooks api
echo "  admin page: http://127.0.0.1:$QUEUE_HOOKS_API_PORT/ (making a demo admin token)"
token_out=$STATE/demo-token.txt
# The file holds an admin token: made under umask 077 (0600) by the step that writes it.
step bash -c 'umask 077 && exec "$@" >"$0"' "$token_out" $BIN/queue-hooks tokens add --domain 1 --name demo-admin --admin
token=
while read -r line; do
    if [[ $line == "token: "* ]]; then token=${line#token: }; fi
done <"$token_out"
echo "  demo admin token: $token"

printf '%s\n' "" "  queue-hooks is starting. In a second terminal, from this folder:" \
    "      .venv/bin/queue-hooks publish --queue 2 --event leaving" \
    "  and the demo receiver prints the signed delivery here. Ctrl-C stops it all." ""
status=0
step $BIN/queue-hooks run || status=$?
exit "$status" # the worker ended by itself (not by Ctrl-C): its status is make's
