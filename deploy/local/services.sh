#!/usr/bin/env bash
# Private PostgreSQL + RabbitMQ instances for local development, one set per profile.
#
#   deploy/local/services.sh start|stop|status|env run|test|bench
#   deploy/local/services.sh stop run|test|bench rabbitmq|postgres   (one service: fault tests)
#
# `start` brings up whichever of the two is down, so it also restarts one stopped alone.
# Each profile has its own ports, so all three can run side by side, and keeps every
# byte of state under <repo>/.local/<profile>/ (git-ignored). Nothing is registered
# with systemd and nothing system-wide is touched, apart from installing the Debian
# packages when they are missing and we are root.
#
# Environment knobs:
#   QH_PORT_OFFSET     added to every port (e.g. a second checkout on the same machine)
#   PG_BIN             directory holding initdb/pg_ctl/postgres (default: newest found)
#   QH_RABBITMQ_BIN    directory holding rabbitmq-server/rabbitmqctl
#                      (default: /usr/lib/rabbitmq/bin, the Debian location)
#   QH_START_TIMEOUT   seconds to wait for each service to come up (default: 60)
#
# Exit codes: 0 ok, 1 failure, 2 usage, 3 `status` found something down.
set -euo pipefail

usage() {
    echo "usage: $0 start|stop|status|env run|test|bench [rabbitmq|postgres]" >&2
    exit 2
}

[[ $# -eq 2 || $# -eq 3 ]] || usage
ACTION=$1
PROFILE=$2
ONLY=${3:-} # stop: only this service (the fault tests stop one and start it again)
case $ONLY in '' | rabbitmq | postgres) ;; *) usage ;; esac

# --- Ports ----------------------------------------------------------------------------
# run=55xxx, test=56xxx, bench=57xxx. The suffixes mirror the well-known ports
# (5432 PostgreSQL, 5672 AMQP, 4369 epmd), so `ss -ltn` output is easy to read.
case $PROFILE in
    run) block=55000 ;;
    test) block=56000 ;;
    bench) block=57000 ;;
    *) usage ;;
esac
OFFSET=${QH_PORT_OFFSET:-0}
[[ $OFFSET =~ ^[0-9]+$ ]] || { echo "QH_PORT_OFFSET must be a number" >&2; exit 2; }
base=$((block + OFFSET))
PG_PORT=$((base + 432))
AMQP_PORT=$((base + 672))
DIST_PORT=$((base + 673))      # Erlang distribution (rabbitmqctl talks to the node here)
EPMD_PORT=$((base + 369))      # private epmd: never shares 4369 with anything else
CTL_DIST_MIN=$((base + 680))   # rabbitmqctl's own distribution ports
CTL_DIST_MAX=$((base + 689))
((base + 689 <= 65535)) || { echo "QH_PORT_OFFSET too large" >&2; exit 2; }

# --- Paths ----------------------------------------------------------------------------
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
STATE=$REPO/.local/$PROFILE
ENV_FILE=$STATE/env

PG_DIR=$STATE/postgres
PG_DATA=$PG_DIR/data
PG_SOCK=$PG_DIR/sock
PG_LOG=$PG_DIR/postgres.log
DB_NAME=queue_hooks

RMQ_DIR=$STATE/rabbitmq
RMQ_HOME=$RMQ_DIR/home                  # HOME for the node and the CLI: holds .erlang.cookie
RMQ_LOG_DIR=$RMQ_DIR/log
RMQ_PID_FILE=$RMQ_DIR/rabbitmq.pid      # written by the Erlang VM itself
RMQ_LAUNCHER_PID=$RMQ_DIR/launcher.pid  # the rabbitmq-server shell wrapper (exists sooner)
RMQ_OUT=$RMQ_DIR/server.out             # stdout/stderr of the wrapper: early boot errors
RMQ_BIN=${QH_RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}
NODENAME=qh-$PROFILE@localhost
RMQ_LOG=$RMQ_LOG_DIR/$NODENAME.log

TIMEOUT=${QH_START_TIMEOUT:-60}
IS_ROOT=$((EUID == 0 ? 1 : 0))

# Every RabbitMQ process (server and CLI) gets exactly this environment, so the CLI finds
# the node (same epmd, same cookie) and nothing is read from /etc/rabbitmq.
RMQ_ENV=(
    HOME="$RMQ_HOME"
    LANG=C.UTF-8 LC_ALL=C.UTF-8 # otherwise the Elixir CLI warns about latin1 on every call
    ERL_EPMD_PORT="$EPMD_PORT"
    ERL_EPMD_ADDRESS=127.0.0.1 # epmd is started by the node; keep it off the network
    RABBITMQ_NODENAME="$NODENAME"
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    RABBITMQ_NODE_PORT="$AMQP_PORT"
    RABBITMQ_DIST_PORT="$DIST_PORT"
    RABBITMQ_CTL_DIST_PORT_MIN="$CTL_DIST_MIN"
    RABBITMQ_CTL_DIST_PORT_MAX="$CTL_DIST_MAX"
    # Bind distribution to loopback too (the default is all interfaces).
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia"
    RABBITMQ_LOG_BASE="$RMQ_LOG_DIR"
    RABBITMQ_CONFIG_FILE="$RMQ_DIR/rabbitmq.conf"
    RABBITMQ_CONFIG_FILES="$RMQ_DIR/conf.d/*.conf"         # default: /etc/rabbitmq/conf.d
    RABBITMQ_ADVANCED_CONFIG_FILE="$RMQ_DIR/advanced.config" # default: /etc/rabbitmq/...
    RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/enabled_plugins"
    RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/rabbitmq-env.conf"      # empty: skip /etc's
    RABBITMQ_PID_FILE="$RMQ_PID_FILE"
    ERL_CRASH_DUMP="$RMQ_LOG_DIR/erl_crash.dump" # default: the current directory
)

# --- Small helpers --------------------------------------------------------------------
say() { printf '[%s] %s\n' "$PROFILE" "$*"; }
err() { printf '[%s] %s\n' "$PROFILE" "$*" >&2; }
die() { err "$*"; exit 1; }
now_ms() { date +%s%3N; }
since() { local ms=$(($(now_ms) - $1)); printf '%d.%ds' $((ms / 1000)) $((ms % 1000 / 100)); }

# Byte size of a file (0 if missing): logs are appended to across runs, and on failure
# we only want to show what this run wrote.
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }

# Print the last lines a log got since byte offset $3, indented, to stderr.
show_log() {
    local file=$1 lines=${2:-25} from=${3:-0} text
    text=$(tail -c +"$((from + 1))" "$file" 2>/dev/null | tail -n "$lines") || true
    if [[ -n $text ]]; then
        err "--- last lines of $file ---"
        printf '%s\n' "$text" | sed 's/^/    /' >&2
    fi
}

# RabbitMQ's boot failures end in a long crash report; the cause is in the first
# [error] lines, so show those (since byte offset $2).
show_first_errors() {
    local file=$1 from=${2:-0} text
    text=$(tail -c +"$((from + 1))" "$file" 2>/dev/null | awk '/\[error\]/ && n++ < 12') || true
    if [[ -n $text ]]; then
        err "--- first errors in $file ---"
        printf '%s\n' "$text" | sed 's/^/    /' >&2
    fi
}

# Is something listening on 127.0.0.1:$1? Uses ss so that probing does not open a
# connection (which would leave "client closed connection" noise in the server logs).
listening() {
    if command -v ss >/dev/null; then
        [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

rmq() { env "${RMQ_ENV[@]}" "$RMQ_BIN/$1" "${@:2}"; }

# PostgreSQL refuses to run as root, so as root it runs as the `postgres` OS user.
# `cd /` because that user may not be allowed into our current directory.
as_pg() {
    if ((IS_ROOT)); then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# Install Debian packages (root only); `apt-get update` first when the package lists
# do not know the package yet (fresh containers ship without lists).
apt_install() {
    local log=$STATE/apt.log
    mkdir -p "$STATE"
    say "installing $* with apt-get (log: $log)"
    export DEBIAN_FRONTEND=noninteractive
    if [[ $(apt-cache policy "$@" 2>/dev/null) != *"Candidate: "[!\(]* ]]; then
        apt-get -o DPkg::Lock::Timeout=300 update >"$log" 2>&1 || { show_log "$log"; die "apt-get update failed"; }
    fi
    apt-get -o DPkg::Lock::Timeout=300 install -y -q "$@" >>"$log" 2>&1 \
        || { show_log "$log"; die "apt-get install $* failed"; }
}

# --- Locating the software ------------------------------------------------------------
find_pg_bin() {
    local d candidates=()
    if [[ -n ${PG_BIN:-} ]]; then
        echo "$PG_BIN" # validated by ensure_software
        return
    fi
    for d in /usr/lib/postgresql/*/bin; do
        if [[ -x $d/pg_ctl && -x $d/initdb ]]; then candidates+=("$d"); fi
    done
    if ((${#candidates[@]})); then
        printf '%s\n' "${candidates[@]}" | sort -V | tail -n 1
        return
    fi
    if command -v pg_config >/dev/null && d=$(pg_config --bindir 2>/dev/null) && [[ -x $d/pg_ctl ]]; then
        echo "$d"
        return
    fi
    if d=$(command -v pg_ctl); then
        dirname "$(readlink -f "$d")"
        return
    fi
    return 1
}

ensure_software() {
    if [[ ! -x $RMQ_BIN/rabbitmq-server ]]; then
        ((IS_ROOT)) || die "RabbitMQ is not installed: run 'sudo apt-get install rabbitmq-server' (or set QH_RABBITMQ_BIN)"
        apt_install rabbitmq-server
        [[ -x $RMQ_BIN/rabbitmq-server ]] || die "rabbitmq-server installed but $RMQ_BIN/rabbitmq-server is missing"
    fi
    if [[ -n ${PG_BIN:-} && ! -x $PG_BIN/pg_ctl ]]; then
        die "PG_BIN=$PG_BIN does not contain pg_ctl"
    fi
    if ! PG_BIN=$(find_pg_bin); then
        ((IS_ROOT)) || die "PostgreSQL is not installed: run 'sudo apt-get install postgresql' (or set PG_BIN)"
        apt_install postgresql
        PG_BIN=$(find_pg_bin) || die "postgresql installed but no pg_ctl found"
    fi
    PSQL=$PG_BIN/psql
    [[ -x $PSQL ]] || PSQL=$(command -v psql) || die "psql not found (looked in $PG_BIN and PATH)"
}

# --- State directory and env file -------------------------------------------------------
write_env_file() {
    mkdir -p "$STATE"
    # Write-then-rename so that a concurrent reader never sees half a file.
    cat >"$ENV_FILE.tmp" <<EOF
QUEUE_HOOKS_AMQP_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT/
QUEUE_HOOKS_DATABASE_URL=postgresql://postgres@127.0.0.1:$PG_PORT/$DB_NAME
EOF
    mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

# --- PostgreSQL -----------------------------------------------------------------------
pg_running() {
    [[ -f $PG_DATA/PG_VERSION ]] && as_pg "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1
}

pg_pid() { head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true; }

pg_prepare_dirs() {
    mkdir -p "$PG_SOCK"
    if ((IS_ROOT)); then
        # The postgres user must be able to walk down to its directory.
        chmod a+x "$REPO/.local" "$STATE"
        chown postgres:postgres "$PG_DIR" "$PG_SOCK"
        if ! as_pg test -w "$PG_DIR"; then
            local d=/ part
            local IFS=/
            for part in ${PG_DIR#/}; do
                d=${d%/}/$part
                if ! as_pg test -x "$d"; then
                    die "the postgres user cannot enter $d: run 'chmod o+x $d' or move the repo"
                fi
            done
            die "the postgres user cannot write to $PG_DIR"
        fi
    fi
}

pg_init() {
    if [[ -f $PG_DATA/PG_VERSION ]]; then return 0; fi
    say "postgres: initialising cluster in ${PG_DATA#"$REPO"/}"
    # --no-sync: a throwaway dev cluster does not need the final fsync of every file.
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --no-locale \
        --no-sync --no-instructions >"$PG_DIR/initdb.log" 2>&1; then
        show_log "$PG_DIR/initdb.log"
        err "postgres: initdb failed"
        return 1
    fi
    # Our settings live in qh.conf, rewritten on every start (ports may change with
    # QH_PORT_OFFSET); postgresql.conf just pulls it in last so it wins.
    echo "include_if_exists = 'qh.conf'" | as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null
}

pg_write_conf() {
    local sockets=$PG_SOCK
    # Unix socket paths are limited to 107 bytes (dir + "/.s.PGSQL.<port>"); deep
    # checkouts get TCP only.
    if ((${#PG_SOCK} + 15 > 107)); then
        err "postgres: $PG_SOCK is too long for a Unix socket; TCP only"
        sockets=
    fi
    {
        echo "# Written by deploy/local/services.sh on every start; edits are overwritten."
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $PG_PORT"
        echo "unix_socket_directories = '$sockets'"
        if [[ $PROFILE != run ]]; then
            echo "# $PROFILE profile: throwaway data, trade durability for speed."
            echo "fsync = off"
            echo "synchronous_commit = off"
            echo "full_page_writes = off"
        fi
    } | as_pg tee "$PG_DATA/qh.conf" >/dev/null
}

PG_LAUNCHED=0 # set when this invocation started PostgreSQL (to undo a failed start)

pg_start() {
    local t0 was_running=0 log_from
    t0=$(now_ms)
    log_from=$(size_of "$PG_LOG")
    if pg_running; then
        was_running=1
    else
        pg_init || return 1
        pg_write_conf || return 1
        if ! as_pg "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t "$TIMEOUT" -s >/dev/null 2>&1; then
            show_log "$PG_LOG" 25 "$log_from"
            return 1
        fi
        PG_LAUNCHED=1
    fi
    # Connect over TCP as the current user: trust auth, no need for the postgres OS user.
    local psql=("$PSQL" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres)
    if [[ -z $("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") ]]; then
        "${psql[@]}" -c "CREATE DATABASE $DB_NAME" || { show_log "$PG_LOG" 25 "$log_from"; return 1; }
    fi
    if ((was_running)); then
        say "postgres: already running (pid $(pg_pid)) on 127.0.0.1:$PG_PORT"
    else
        say "postgres: up (pid $(pg_pid)) postgresql://postgres@127.0.0.1:$PG_PORT/$DB_NAME [$(since "$t0")]"
    fi
}

pg_stop() {
    if [[ -n ${PG_BIN:-} ]] && pg_running; then
        as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t "$TIMEOUT" -s \
            || { show_log "$PG_LOG"; die "postgres: pg_ctl stop failed"; }
        say "postgres: stopped"
    else
        say "postgres: not running"
    fi
}

# --- RabbitMQ -------------------------------------------------------------------------
# The pid recorded by the VM (or, early in boot, by us for the wrapper), but only if it
# still belongs to this profile: pids get reused after a reboot.
rmq_pid() {
    local f pid
    for f in "$RMQ_PID_FILE" "$RMQ_LAUNCHER_PID"; do
        pid=$(cat "$f" 2>/dev/null || true)
        if pid_alive "$pid" && { [[ ! -r /proc/$pid/environ ]] \
            || grep -qzxF "RABBITMQ_MNESIA_BASE=$RMQ_DIR/mnesia" "/proc/$pid/environ" 2>/dev/null; }; then
            echo "$pid"
            return 0
        fi
    done
    return 1
}

rmq_write_conf() {
    mkdir -p "$RMQ_HOME" "$RMQ_LOG_DIR" "$RMQ_DIR/mnesia" "$RMQ_DIR/conf.d"
    chmod 700 "$RMQ_HOME"
    # Erlang insists on a cookie file readable by its owner only.
    if [[ ! -s $RMQ_HOME/.erlang.cookie ]]; then
        (umask 077 && od -An -tx1 -N20 /dev/urandom | tr -d ' \n' >"$RMQ_HOME/.erlang.cookie")
        chmod 400 "$RMQ_HOME/.erlang.cookie"
    fi
    : >"$RMQ_DIR/rabbitmq-env.conf"
    echo '[].' >"$RMQ_DIR/enabled_plugins" # no plugins: faster boot, no management port
    cat >"$RMQ_DIR/rabbitmq.conf" <<EOF
# Written by deploy/local/services.sh on every start; edits are overwritten.
# Listener address/port come from RABBITMQ_NODE_IP_ADDRESS/RABBITMQ_NODE_PORT.
# guest/guest is created on first boot and, by default, may log in over loopback only.
default_user = guest
default_pass = guest
loopback_users.guest = true
log.file.level = info
log.console = false
EOF
}

rmq_launch() {
    rmq_write_conf
    # QH_FRESH_BROKER=1 (with-services.sh, for test and bench): forget queues and messages.
    if [[ ${QH_FRESH_BROKER:-0} == 1 ]]; then rm -rf "$RMQ_DIR/mnesia"; fi
    rm -f "$RMQ_PID_FILE"
    RMQ_LOG_FROM=$(size_of "$RMQ_LOG")
    RMQ_OUT_FROM=$(size_of "$RMQ_OUT")
    echo "--- $(date -Is) start" >>"$RMQ_OUT"
    # Not /usr/sbin/rabbitmq-server: that wrapper switches to the rabbitmq user.
    # setsid: our own session, so a Ctrl-C in the caller's terminal does not reach the
    # node (with-services.sh stops it cleanly instead); all output goes to a file so
    # nothing keeps the caller's stdout pipe open.
    (cd "$RMQ_DIR" && exec setsid env "${RMQ_ENV[@]}" "$RMQ_BIN/rabbitmq-server" \
        </dev/null >>"$RMQ_OUT" 2>&1) &
    echo $! >"$RMQ_LAUNCHER_PID"
}

# Wait until the node has really booted: first cheaply for the AMQP listener (bailing
# out at once if the VM dies), then `rabbitmqctl await_startup` to be sure.
rmq_wait() {
    local deadline=$((SECONDS + TIMEOUT))
    until listening "$AMQP_PORT"; do
        rmq_pid >/dev/null || { err "rabbitmq: the node exited during boot"; return 1; }
        ((SECONDS < deadline)) || { err "rabbitmq: not up after ${TIMEOUT}s"; return 1; }
        sleep 0.2
    done
    local left=$((deadline - SECONDS))
    ((left >= 5)) || left=5
    rmq rabbitmqctl -q await_startup --timeout "$left" >>"$RMQ_OUT" 2>&1
}

# Wait for the node launched by do_start (or one that was already running) and report.
rmq_start() {
    local launched=$1 t0=$2
    if ! rmq_wait; then
        # Early failures (bad config) never reach the node's log file, only stdout.
        show_first_errors "$RMQ_OUT" "${RMQ_OUT_FROM:-0}"
        show_log "$RMQ_LOG" 20 "${RMQ_LOG_FROM:-0}"
        show_log "$RMQ_OUT" 8 "${RMQ_OUT_FROM:-0}"
        if ((launched)); then rmq_stop >/dev/null 2>&1 || true; fi
        return 1
    fi
    if ((launched)); then
        say "rabbitmq: up (pid $(rmq_pid)) amqp://guest:guest@127.0.0.1:$AMQP_PORT/ node $NODENAME [$(since "$t0")]"
    else
        say "rabbitmq: already running (pid $(rmq_pid)) on 127.0.0.1:$AMQP_PORT"
    fi
}

# Wait up to $2 seconds for pid $1 to go away.
wait_gone() {
    local pid=$1 deadline=$((SECONDS + $2))
    while pid_alive "$pid"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

rmq_stop() {
    local pid launcher
    launcher=$(cat "$RMQ_LAUNCHER_PID" 2>/dev/null || true)
    if pid=$(rmq_pid); then
        # Clean shutdown via the CLI; if the node does not answer, signal it.
        # (SIGTERM makes RabbitMQ >= 3.8 shut down gracefully as well.) A node still booting
        # (no pid file of its own yet: Ctrl-C during `make run`'s start) is only signalled.
        if [[ $pid == "$launcher" ]]; then
            kill -TERM "$pid" 2>/dev/null || true
            wait_gone "$pid" 15 || kill -KILL "$pid" 2>/dev/null || true
        elif ! timeout 60 env "${RMQ_ENV[@]}" "$RMQ_BIN/rabbitmqctl" -q stop >>"$RMQ_OUT" 2>&1 \
            || ! wait_gone "$pid" 30; then
            err "rabbitmq: rabbitmqctl stop did not work, sending SIGTERM to $pid"
            kill -TERM "$pid" 2>/dev/null || true
            wait_gone "$pid" 15 || kill -KILL "$pid" 2>/dev/null || true
        fi
        # The shell wrapper exits on its own once the VM is gone.
        [[ $launcher == "$pid" ]] || wait_gone "$launcher" 5 || kill -KILL "$launcher" 2>/dev/null || true
        say "rabbitmq: stopped"
    else
        say "rabbitmq: not running"
    fi
    rm -f "$RMQ_PID_FILE" "$RMQ_LAUNCHER_PID"
    # The VM started a private epmd on $EPMD_PORT, which outlives the node: stop it too.
    # epmd only agrees to die when no node is registered, so another instance is safe.
    if command -v epmd >/dev/null && ERL_EPMD_PORT=$EPMD_PORT epmd -names >/dev/null 2>&1; then
        ERL_EPMD_PORT=$EPMD_PORT epmd -kill >/dev/null 2>&1 || true
    fi
}

# --- Actions --------------------------------------------------------------------------
do_start() {
    local t0
    t0=$(now_ms)
    ensure_software
    write_env_file
    # Check everything that can be checked before launching anything, so that these
    # failures need no cleanup.
    local rmq_up=0 launched=0
    if rmq_pid >/dev/null; then
        rmq_up=1
    elif listening "$AMQP_PORT" || listening "$DIST_PORT"; then
        die "rabbitmq: port $AMQP_PORT or $DIST_PORT is taken by another process"
    fi
    if ! pg_running; then
        if listening "$PG_PORT"; then die "postgres: port $PG_PORT is taken by another process"; fi
        pg_prepare_dirs
    fi
    # RabbitMQ takes the longest to boot, so launch it first and set up PostgreSQL
    # while it boots; only then wait for it.
    if ((!rmq_up)); then
        rmq_launch
        launched=1
    fi
    if ! pg_start; then
        err "postgres: failed to start"
        if ((launched)); then rmq_stop >/dev/null 2>&1 || true; fi
        exit 1
    fi
    if ! rmq_start "$launched" "$t0"; then
        err "rabbitmq: failed to start"
        # Do not leave half a profile behind: stop PostgreSQL if we started it.
        if ((PG_LAUNCHED)); then pg_stop >/dev/null || true; fi
        exit 1
    fi
    say "ready in $(since "$t0"); variables in ${ENV_FILE#"$REPO"/}"
}

do_stop() {
    # No binaries, no state: nothing can be running.
    PG_BIN=$(find_pg_bin 2>/dev/null) || PG_BIN=
    if [[ $ONLY == postgres ]]; then
        :
    elif [[ -x $RMQ_BIN/rabbitmqctl ]]; then
        rmq_stop
    else
        say "rabbitmq: not running"
    fi
    if [[ $ONLY != rabbitmq ]]; then pg_stop; fi
}

do_status() {
    local up=0 pid
    PG_BIN=$(find_pg_bin 2>/dev/null) || PG_BIN=
    if [[ -n $PG_BIN ]] && pg_running && listening "$PG_PORT"; then
        say "postgres: up (pid $(pg_pid)) on 127.0.0.1:$PG_PORT"
        up=$((up + 1))
    else
        say "postgres: down"
    fi
    if pid=$(rmq_pid) && listening "$AMQP_PORT"; then
        say "rabbitmq: up (pid $pid) on 127.0.0.1:$AMQP_PORT"
        up=$((up + 1))
    elif [[ -n ${pid:-} ]]; then
        say "rabbitmq: starting (pid $pid), AMQP port not open yet"
    else
        say "rabbitmq: down"
    fi
    ((up == 2)) || exit 3
}

case $ACTION in
    start) do_start ;;
    stop) do_stop ;;
    status) do_status ;;
    env)
        write_env_file
        cat "$ENV_FILE"
        ;;
    *) usage ;;
esac
