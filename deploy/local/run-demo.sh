#!/usr/bin/env bash
# `make run`: local RabbitMQ and PostgreSQL, the schema and demo fixtures, the demo receiver,
# then the worker in the foreground with console logs. Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
DEMO_SECRET='whsec_cXVldWUtaG9va3MgZGVtbyBzZWNyZXQsIG5vdCBmb3IgcmVhbCB1c2U='  # public demo secret

deploy/local/services.sh start run
set -a; . .local/run/env; set +a
export QUEUE_HOOKS_LOG_FORMAT=console QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS=true
# The demo receiver lives on 127.0.0.1, which the worker refuses by default (contract §7).

# A second terminal finds the same services through .env (kept if you already have one).
if [[ ! -e .env ]]; then
    { cat .local/run/env; echo "QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS=true"; } > .env
    echo "wrote .env (the local services' URLs) for commands in other terminals"
fi

$BIN/queue-hooks migrate --fixtures deploy/fixtures/demo.sql

stop_all() {
    trap - EXIT INT TERM
    [[ -n ${receiver:-} ]] && kill "$receiver" 2>/dev/null && wait "$receiver" 2>/dev/null
    [[ -n ${api:-} ]] && kill "$api" 2>/dev/null && wait "$api" 2>/dev/null
    deploy/local/services.sh stop run
}
trap stop_all EXIT
trap 'exit 130' INT TERM

$BIN/queue-hooks demo-receiver --port 8099 --secret "$DEMO_SECRET" &
receiver=$!

# The admin API and page (issue 11), with a demo admin token of the demo's domain.
export QUEUE_HOOKS_API_PORT=${QUEUE_HOOKS_API_PORT:-$((8080 + ${QH_PORT_OFFSET:-0}))}
$BIN/queue-hooks api &
api=$!
token=$($BIN/queue-hooks tokens add --domain 1 --name demo-admin --admin | sed -n 's/^token: //p')
echo "  admin page: http://127.0.0.1:$QUEUE_HOOKS_API_PORT/  demo admin token: $token"

cat <<'MSG'

  queue-hooks is starting. In a second terminal, from this folder:
      .venv/bin/queue-hooks publish --queue 2 --event leaving
  and the demo receiver prints the signed delivery here. Ctrl-C stops it all.

MSG
$BIN/queue-hooks run
