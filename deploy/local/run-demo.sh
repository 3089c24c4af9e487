#!/usr/bin/env bash
# `make run`: local RabbitMQ and PostgreSQL, the schema and demo fixtures, the demo receiver,
# then the worker in the foreground with console logs. Ctrl-C stops it all.
# `make cluster` runs it with QH_PROFILE=cluster: three RabbitMQ nodes, PostgreSQL primary +
# standby (docs/cluster.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
DEMO_SECRET='whsec_cXVldWUtaG9va3MgZGVtbyBzZWNyZXQsIG5vdCBmb3IgcmVhbCB1c2U='  # public demo secret

PROFILE=${QH_PROFILE:-run}
deploy/local/services.sh start "$PROFILE"
set -a; . ".local/$PROFILE/env"; set +a
export QUEUE_HOOKS_LOG_FORMAT=console QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS=true
# The demo receiver lives on 127.0.0.1, which the worker refuses by default (contract §7).

# A second terminal finds the same services through .env (kept if you already have one).
if [[ ! -e .env ]]; then
    { cat ".local/$PROFILE/env"; echo "QUEUE_HOOKS_ALLOW_PRIVATE_TARGETS=true"; } > .env
    echo "wrote .env (the local services' URLs) for commands in other terminals"
fi

$BIN/queue-hooks migrate --fixtures deploy/fixtures/demo.sql

stop_all() {
    trap - EXIT INT TERM
    [[ -n ${receiver:-} ]] && kill "$receiver" 2>/dev/null && wait "$receiver" 2>/dev/null
    deploy/local/services.sh stop "$PROFILE"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

$BIN/queue-hooks demo-receiver --port 8099 --secret "$DEMO_SECRET" &
receiver=$!

cat <<'MSG'

  queue-hooks is starting. In a second terminal, from this folder:
      .venv/bin/queue-hooks publish --queue 2 --event leaving
  and the demo receiver prints the signed delivery here. Ctrl-C stops it all.

MSG
$BIN/queue-hooks run
