#!/usr/bin/env bash
# Private PostgreSQL + RabbitMQ instances for local development, one set per profile.
#
#   deploy/local/services.sh start|stop|status|env run|test|bench|cluster
#   deploy/local/services.sh stop PROFILE rabbitmq|postgres   (one service: fault tests)
#
# The `cluster` profile is three RabbitMQ nodes joined into one cluster and a PostgreSQL
# primary with a streaming standby, all on loopback; the fault tests break single nodes:
#
#   deploy/local/services.sh node-stop|node-kill|node-start cluster rabbit1|rabbit2|rabbit3|pg1|pg2
#   deploy/local/services.sh pg-promote cluster     (the standby becomes the primary)
#   deploy/local/services.sh pg-primary cluster     (prints pg1 or pg2)
#   deploy/local/services.sh leader cluster QUEUE   (prints the node leading a quorum queue)
#   deploy/local/services.sh members cluster QUEUE  (prints its members: rabbit1 rabbit2 ...)
#   deploy/local/services.sh rabbitmqctl PROFILE ARGS...  (rabbitmqctl on a running node)
#
# node-stop is a clean shutdown, node-kill a SIGKILL (of the whole PostgreSQL server),
# node-start brings one node back (a RabbitMQ node rejoins its cluster by itself; a
# PostgreSQL node that is not the primary is cloned afresh from it, so an old primary
# never comes back as a second primary). For the single-node profiles the node names
# are `rabbitmq` and `postgres`.
#
# `start` brings up whichever of the services (nodes) is down, so it also restarts one
# stopped alone. Each profile has its own ports, so all of them can run side by side, and
# keeps every byte of state under <repo>/.local/<profile>/ (git-ignored). Nothing is
# registered with systemd and nothing system-wide is touched, apart from installing the
# Debian packages when they are missing and we are root.
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
    echo "usage: $0 start|stop|status|env run|test|bench|cluster [rabbitmq|postgres]" >&2
    echo "       $0 node-start|node-stop|node-kill PROFILE NODE" >&2
    echo "       $0 pg-promote|pg-primary cluster" >&2
    echo "       $0 leader|members cluster QUEUE" >&2
    echo "       $0 rabbitmqctl PROFILE ARGS..." >&2
    exit 2
}

[[ $# -ge 2 ]] || usage
ACTION=$1
PROFILE=$2
ARG=
CTL_ARGS=()
if [[ $ACTION == rabbitmqctl ]]; then
    CTL_ARGS=("${@:3}")
else
    [[ $# -le 3 ]] || usage
    ARG=${3:-}
fi
ONLY= # stop: only this service (the fault tests stop one and start it again)
case $PROFILE in
    cluster) RMQ_NODES=(rabbit1 rabbit2 rabbit3) PG_NODES=(pg1 pg2) ;;
    *) RMQ_NODES=(rabbitmq) PG_NODES=(postgres) ;;
esac
case $ACTION in
    start | stop | status | env)
        case $ARG in '' | rabbitmq | postgres) ONLY=$ARG ;; *) usage ;; esac
        ;;
    node-start | node-stop | node-kill)
        [[ " ${RMQ_NODES[*]} ${PG_NODES[*]} " == *" $ARG "* ]] || usage
        ;;
    pg-promote | pg-primary) [[ $PROFILE == cluster && -z $ARG ]] || usage ;;
    leader | members) [[ $PROFILE == cluster && -n $ARG ]] || usage ;;
    rabbitmqctl) ((${#CTL_ARGS[@]})) || usage ;;
    *) usage ;;
esac

# --- Ports ----------------------------------------------------------------------------
# run=55xxx, test=56xxx, bench=57xxx, cluster=20xxx. The cluster sits below Linux's
# ephemeral range (32768-60999) with any offset up to 12000: its five listeners boot side
# by side, and a port the kernel has just handed to an outgoing connection (to epmd, say)
# failed a node's boot with eaddrinuse. The suffixes mirror the well-known ports
# (5432 PostgreSQL, 5672 AMQP, 4369 epmd), so `ss -ltn` output is easy to read; the
# cluster's nodes count up from there: PostgreSQL pg1 432, pg2 433; RabbitMQ rabbit1..3
# AMQP 672..674, Erlang distribution 772..774.
case $PROFILE in
    run) block=55000 ;;
    test) block=56000 ;;
    bench) block=57000 ;;
    cluster) block=20000 ;;
    *) usage ;;
esac
OFFSET=${QH_PORT_OFFSET:-0}
[[ $OFFSET =~ ^[0-9]+$ ]] || { echo "QH_PORT_OFFSET must be a number" >&2; exit 2; }
base=$((block + OFFSET))
EPMD_PORT=$((base + 369))      # private epmd: never shares 4369 with anything else
CTL_DIST_MIN=$((base + 680))   # rabbitmqctl's own distribution ports
CTL_DIST_MAX=$((base + 689))
((base + 789 <= 65535)) || { echo "QH_PORT_OFFSET too large" >&2; exit 2; }

# --- Paths ----------------------------------------------------------------------------
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
STATE=$REPO/.local/$PROFILE
ENV_FILE=$STATE/env
DB_NAME=queue_hooks
PRIMARY_FILE=$STATE/pg-primary # cluster: which PostgreSQL node is the primary now
RMQ_BIN=${QH_RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}

TIMEOUT=${QH_START_TIMEOUT:-60}
IS_ROOT=$((EUID == 0 ? 1 : 0))

# The functions below act on one node at a time: pg_node/rmq_node point these globals at it.
pg_node() {
    PG_NAME=$1
    if [[ $PROFILE == cluster ]]; then
        PG_DIR=$STATE/$1
        PG_PORT=$((base + 431 + ${1#pg}))
    else
        PG_DIR=$STATE/postgres
        PG_PORT=$((base + 432))
    fi
    PG_DATA=$PG_DIR/data
    PG_SOCK=$PG_DIR/sock
    PG_LOG=$PG_DIR/postgres.log
}

rmq_node() {
    RMQ_NAME=$1
    if [[ $PROFILE == cluster ]]; then
        RMQ_DIR=$STATE/$1
        RMQ_HOME=$STATE/erlang # one HOME, so one .erlang.cookie, for the nodes and the CLI
        NODENAME=qh-cluster-$1@localhost
        AMQP_PORT=$((base + 671 + ${1#rabbit}))
        DIST_PORT=$((base + 771 + ${1#rabbit}))
    else
        RMQ_DIR=$STATE/rabbitmq
        RMQ_HOME=$RMQ_DIR/home # HOME for the node and the CLI: holds .erlang.cookie
        NODENAME=qh-$PROFILE@localhost
        AMQP_PORT=$((base + 672))
        DIST_PORT=$((base + 673)) # Erlang distribution (rabbitmqctl talks to the node here)
    fi
    RMQ_LOG_DIR=$RMQ_DIR/log
    RMQ_PID_FILE=$RMQ_DIR/rabbitmq.pid     # written by the Erlang VM itself
    RMQ_LAUNCHER_PID=$RMQ_DIR/launcher.pid # the rabbitmq-server shell wrapper (exists sooner)
    RMQ_OUT=$RMQ_DIR/server.out            # stdout/stderr of the wrapper: early boot errors
    RMQ_LOG=$RMQ_LOG_DIR/$NODENAME.log
    # Every RabbitMQ process (server and CLI) gets exactly this environment, so the CLI
    # finds the node (same epmd, same cookie) and nothing is read from /etc/rabbitmq.
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
}

# --- Small helpers --------------------------------------------------------------------
# A terminal that has gone away (SIGHUP) fails the write: the stop must go on regardless.
say() { printf '[%s] %s\n' "$PROFILE" "$*" 2>/dev/null || true; }
err() { printf '[%s] %s\n' "$PROFILE" "$*" >&2 2>/dev/null || true; }
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

# Runs a command that may take long in the background and waits for it. Bash runs a trap
# only once the foreground command has returned, but it interrupts `wait` at once: so a
# start stopped meanwhile (start_interrupted) acts at once, and stops this command itself
# (rather than its whole process group, whose foreground children bash reports killed:
# "Terminated").
BG_PIDS=()
in_background() {
    local status=0
    "$@" &
    BG_PIDS+=($!)
    wait "$!" || status=$?
    unset 'BG_PIDS[-1]'
    return "$status"
}

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
# The cluster's URLs name every node: the AMQP URLs comma-separated, PostgreSQL in libpq's
# multi-host form, where target_session_attrs=read-write finds whichever is the primary.
write_env_file() {
    local n amqp=() pg=()
    for n in "${RMQ_NODES[@]}"; do
        rmq_node "$n"
        amqp+=("amqp://guest:guest@127.0.0.1:$AMQP_PORT/")
    done
    for n in "${PG_NODES[@]}"; do
        pg_node "$n"
        pg+=("127.0.0.1:$PG_PORT")
    done
    local IFS=,
    local db_url="postgresql://postgres@${pg[*]}/$DB_NAME"
    [[ $PROFILE != cluster ]] || db_url+="?target_session_attrs=read-write"
    mkdir -p "$STATE"
    # Write-then-rename so that a concurrent reader never sees half a file.
    cat >"$ENV_FILE.tmp" <<EOT
QUEUE_HOOKS_AMQP_URL=${amqp[*]}
QUEUE_HOOKS_DATABASE_URL=$db_url
EOT
    mv -f "$ENV_FILE.tmp" "$ENV_FILE"
}

# --- PostgreSQL -----------------------------------------------------------------------
# Which node is the primary: always `postgres` for the single-node profiles; for the
# cluster pg1 until `pg-promote` makes the standby the primary.
pg_primary() {
    if [[ $PROFILE == cluster ]]; then cat "$PRIMARY_FILE" 2>/dev/null || echo pg1; else echo postgres; fi
}

pg_is_primary() { [[ $PG_NAME == "$(pg_primary)" ]]; }

pg_running() {
    [[ -f $PG_DATA/PG_VERSION ]] && as_pg "$PG_BIN/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1
}

pg_pid() { head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true; }

pg_psql() {
    "$PSQL" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"
}

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
    say "$PG_NAME: initialising cluster in ${PG_DATA#"$REPO"/}"
    # --no-sync: a throwaway dev cluster does not need the final fsync of every file.
    if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --no-locale \
        --no-sync --no-instructions >"$PG_DIR/initdb.log" 2>&1; then
        show_log "$PG_DIR/initdb.log"
        err "$PG_NAME: initdb failed"
        return 1
    fi
    # Our settings live in qh.conf, rewritten on every start (ports may change with
    # QH_PORT_OFFSET); postgresql.conf just pulls it in last so it wins.
    echo "include_if_exists = 'qh.conf'" | as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null
}

# A cluster node that is not the primary is always made a fresh copy of the primary
# (pg_basebackup -R: standby.signal plus primary_conninfo), also when it was the primary
# before a promotion: so it can never come back as a second primary with a past of its own.
# Initdb's pg_hba.conf already trusts replication connections over loopback.
pg_clone() {
    local primary=$1 primary_port=$2
    if [[ -f $PG_DATA/standby.signal ]] && grep -q "port=$primary_port " "$PG_DATA/postgresql.auto.conf" 2>/dev/null; then
        return 0 # already a standby of this primary
    fi
    say "$PG_NAME: cloning $primary (pg_basebackup -R) into ${PG_DATA#"$REPO"/}"
    as_pg rm -rf "$PG_DATA"
    if ! as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$PG_DATA" \
        -R -X stream -c fast --no-sync >"$PG_DIR/basebackup.log" 2>&1; then
        show_log "$PG_DIR/basebackup.log"
        err "$PG_NAME: pg_basebackup from $primary failed (is it up?)"
        return 1
    fi
}

pg_write_conf() {
    local sockets=$PG_SOCK
    # Unix socket paths are limited to 107 bytes (dir + "/.s.PGSQL.<port>"); deep
    # checkouts get TCP only.
    if ((${#PG_SOCK} + 15 > 107)); then
        err "$PG_NAME: $PG_SOCK is too long for a Unix socket; TCP only"
        sockets=
    fi
    {
        echo "# Written by deploy/local/services.sh on every start; edits are overwritten."
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $PG_PORT"
        echo "unix_socket_directories = '$sockets'"
        case $PROFILE in
            run) ;;
            cluster)
                # Not full_page_writes = off: pg_basebackup refuses a primary without them.
                # fsync = off survives a SIGKILL (the page cache keeps the data), not a power cut.
                echo "# cluster profile: a primary streaming to a standby (wal_level replica)."
                echo "fsync = off"
                echo "wal_keep_size = '256MB' # a standby stopped for a while can catch up"
                echo "cluster_name = 'qh-$PG_NAME'"
                ;;
            *)
                echo "# $PROFILE profile: throwaway data, trade durability for speed."
                echo "fsync = off"
                echo "synchronous_commit = off"
                echo "full_page_writes = off"
                ;;
        esac
    } | as_pg tee "$PG_DATA/qh.conf" >/dev/null
}

PG_LAUNCHED=() # the nodes this invocation started (to undo a failed start)

pg_start() {
    local t0 was_running=0 log_from primary
    t0=$(now_ms)
    log_from=$(size_of "$PG_LOG")
    primary=$(pg_primary)
    if pg_running; then
        was_running=1
    else
        if listening "$PG_PORT"; then err "$PG_NAME: port $PG_PORT is taken by another process"; return 1; fi
        pg_prepare_dirs
        if pg_is_primary; then
            pg_init || return 1
        else
            pg_clone "$primary" "$(pg_node "$primary" && echo "$PG_PORT")" || return 1
        fi
        pg_write_conf || return 1
        PG_LAUNCHED+=("$PG_NAME") # before: an interrupted pg_ctl leaves a server starting
        local tries=3
        until as_pg "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t "$TIMEOUT" -s >/dev/null 2>&1; do
            # As for RabbitMQ (rmq_start): a port held for a while by an outgoing connection.
            if ((--tries > 0)) && ! pg_running && port_was_taken "$PG_LOG" "$log_from"; then
                say "$PG_NAME: another program's connection held port $PG_PORT; starting it again once it is free"
                wait_ports_free "$PG_PORT" || true
                log_from=$(size_of "$PG_LOG")
                continue
            fi
            show_log "$PG_LOG" 25 "$log_from"
            return 1
        done
    fi
    # Connect over TCP as the current user: trust auth, no need for the postgres OS user.
    # (A standby gets the database from its primary.)
    if pg_is_primary && [[ -z $(pg_psql -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") ]]; then
        pg_psql -c "CREATE DATABASE $DB_NAME" || { show_log "$PG_LOG" 25 "$log_from"; return 1; }
    fi
    local role=
    [[ $PROFILE != cluster ]] || role=$(pg_is_primary && echo " primary" || echo " standby of $primary")
    if ((was_running)); then
        say "$PG_NAME: already running$role (pid $(pg_pid)) on 127.0.0.1:$PG_PORT"
    else
        say "$PG_NAME: up$role (pid $(pg_pid)) postgresql://postgres@127.0.0.1:$PG_PORT/$DB_NAME [$(since "$t0")]"
    fi
}

# The standby counts as up once its primary sees it streaming.
pg_wait_streaming() {
    local standby=$1 deadline=$((SECONDS + TIMEOUT))
    until [[ $(pg_psql -tAc "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'qh-$standby' AND state = 'streaming'" 2>/dev/null) == 1 ]]; do
        ((SECONDS < deadline)) || { err "$standby: not streaming from $PG_NAME after ${TIMEOUT}s"; return 1; }
        sleep 0.2
    done
}

pg_stop() {
    if [[ -n ${PG_BIN:-} ]] && pg_running; then
        as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t "$TIMEOUT" -s \
            || { show_log "$PG_LOG"; die "$PG_NAME: pg_ctl stop failed"; }
        say "$PG_NAME: stopped"
    else
        say "$PG_NAME: not running"
    fi
}

# A crash: the postmaster and every backend at once (the postmaster stopped first, so that
# it forks nothing new while we gather its children).
pg_kill() {
    local pid
    pid=$(pg_pid)
    if ! pg_running || ! pid_alive "$pid"; then
        say "$PG_NAME: not running"
        return 0
    fi
    kill -STOP "$pid"
    # shellcheck disable=SC2046  # one pid a word
    kill -KILL "$pid" $(ps -o pid= --ppid "$pid") 2>/dev/null || true
    wait_gone "$pid" 10 || die "$PG_NAME: pid $pid survived SIGKILL"
    say "$PG_NAME: killed (pid $pid)"
}

pg_promote() {
    local primary standby
    primary=$(pg_primary)
    standby=$([[ $primary == pg1 ]] && echo pg2 || echo pg1)
    pg_node "$primary"
    if pg_running; then
        die "$primary is the primary and still running: stop or kill it first (two primaries would split the data)"
    fi
    pg_node "$standby"
    pg_running || die "$standby (the standby) is not running: nothing to promote"
    as_pg "$PG_BIN/pg_ctl" promote -D "$PG_DATA" -w -t "$TIMEOUT" -s \
        || { show_log "$PG_LOG"; die "$standby: pg_ctl promote failed"; }
    echo "$standby" >"$PRIMARY_FILE"
    say "$standby: promoted, now the primary on 127.0.0.1:$PG_PORT ($primary will come back as its standby)"
}

# --- RabbitMQ -------------------------------------------------------------------------
# The pid recorded by the VM (or, early in boot, by us for the wrapper), but only if it
# still belongs to this node: pids get reused after a reboot.
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
    # Erlang insists on a cookie file readable by its owner only. (The cluster's nodes
    # share one HOME, so one cookie: write it before they start in parallel.)
    if [[ ! -s $RMQ_HOME/.erlang.cookie ]]; then
        (umask 077 && od -An -tx1 -N20 /dev/urandom | tr -d ' \n' >"$RMQ_HOME/.erlang.cookie")
        chmod 400 "$RMQ_HOME/.erlang.cookie"
    fi
    : >"$RMQ_DIR/rabbitmq-env.conf"
    echo '[].' >"$RMQ_DIR/enabled_plugins" # no plugins: faster boot, no management port
    cat >"$RMQ_DIR/rabbitmq.conf" <<EOT
# Written by deploy/local/services.sh on every start; edits are overwritten.
# Listener address/port come from RABBITMQ_NODE_IP_ADDRESS/RABBITMQ_NODE_PORT.
# guest/guest is created on first boot and, by default, may log in over loopback only.
default_user = guest
default_pass = guest
loopback_users.guest = true
log.file.level = info
log.console = false
EOT
}

rmq_launch() {
    rmq_write_conf
    # QH_FRESH_BROKER=1 (with-services.sh, for test and bench): forget queues and messages.
    if [[ ${QH_FRESH_BROKER:-0} == 1 ]]; then rm -rf "$RMQ_DIR/mnesia"; fi
    rm -f "$RMQ_PID_FILE"
    echo "--- $(date -Is) start" >>"$RMQ_OUT"
    # Not /usr/sbin/rabbitmq-server: that wrapper switches to the rabbitmq user.
    # setsid: our own session, so a Ctrl-C in the caller's terminal does not reach the
    # node (with-services.sh stops it cleanly instead); all output goes to a file so
    # nothing keeps the caller's stdout pipe open.
    (cd "$RMQ_DIR" && exec setsid env "${RMQ_ENV[@]}" "$RMQ_BIN/rabbitmq-server" \
        </dev/null >>"$RMQ_OUT" 2>&1) &
    echo $! >"$RMQ_LAUNCHER_PID"
}

# Is the node still there, or the launcher rmq_launch just started? The launcher is checked
# alive only: until its exec chain (subshell, setsid, env) reaches rabbitmq-server, its
# environment is still ours, without the marker rmq_pid looks for (seen on a loaded machine:
# a node-start that reported "exited during boot" while the node went on booting).
rmq_booting() {
    rmq_pid >/dev/null || pid_alive "$(cat "$RMQ_LAUNCHER_PID" 2>/dev/null || true)"
}

# Wait until the node has really booted: first cheaply for the AMQP listener (bailing
# out at once if the VM dies), then `rabbitmqctl await_startup` to be sure.
# Sets RMQ_WHY when it fails.
rmq_wait() {
    local deadline=$((SECONDS + TIMEOUT))
    RMQ_WHY=
    until listening "$AMQP_PORT"; do
        rmq_booting || { RMQ_WHY="the node exited during boot"; return 1; }
        ((SECONDS < deadline)) || { RMQ_WHY="not up after ${TIMEOUT}s"; return 1; }
        sleep 0.2
    done
    local left=$((deadline - SECONDS))
    ((left >= 5)) || left=5
    in_background rmq rabbitmqctl -q await_startup --timeout "$left" >>"$RMQ_OUT" 2>&1 \
        || { RMQ_WHY="its boot did not complete (rabbitmqctl await_startup)"; return 1; }
}

# Did the boot since these byte offsets of its logs fail because one of its ports was in use?
# The run, test and bench profiles' ports lie in Linux's ephemeral range (32768-60999): any
# program's outgoing connection may be given one of them as its own port, and holds it while
# it lasts and for the 60 s of its TIME-WAIT after (SO_REUSEADDR does not help against a
# socket that did not set it), at a moment we cannot foresee.
port_was_taken() {
    local file from
    while (($#)); do
        file=$1 from=$2
        shift 2
        if tail -c +"$((from + 1))" "$file" 2>/dev/null | grep -qE 'eaddrinuse|Address already in use'; then
            return 0
        fi
    done
    return 1
}

# After such a failure: wait (up to 70 s) until no socket holds these ports any more.
wait_ports_free() {
    local p deadline=$((SECONDS + 70)) held
    while :; do
        held=
        for p in "$@"; do
            if [[ -n $(ss -Htan "sport = :$p" 2>/dev/null) ]]; then held+=" $p"; fi
        done
        [[ -n $held ]] || return 0
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

# Wait for a node launched by rmq_launch_nodes (or one that was already running) and report.
# A boot that failed for a port taken meanwhile by someone's outgoing connection is tried
# again: such a connection goes away (a listener there would have been found before).
rmq_start() {
    local launched=$1 t0=$2 log_from=$3 out_from=$4 tries=3
    while ! rmq_wait; do
        if ((launched && --tries > 0)) && port_was_taken "$RMQ_OUT" "$out_from" "$RMQ_LOG" "$log_from"; then
            say "$RMQ_NAME: another program's connection held one of its ports ($AMQP_PORT, $DIST_PORT, $EPMD_PORT); starting it again once they are free"
            rmq_stop >/dev/null 2>&1 || true
            wait_ports_free "$AMQP_PORT" "$DIST_PORT" || true
            log_from=$(size_of "$RMQ_LOG") out_from=$(size_of "$RMQ_OUT")
            QH_FRESH_BROKER=0 rmq_launch
            continue
        fi
        if [[ -n $RMQ_WHY ]]; then err "$RMQ_NAME: $RMQ_WHY"; fi
        # Early failures (bad config) never reach the node's log file, only stdout.
        show_first_errors "$RMQ_OUT" "$out_from"
        show_log "$RMQ_LOG" 20 "$log_from"
        show_log "$RMQ_OUT" 8 "$out_from"
        if ((launched)); then rmq_stop >/dev/null 2>&1 || true; fi
        return 1
    done
    if ((launched)); then
        say "$RMQ_NAME: up (pid $(rmq_pid)) amqp://guest:guest@127.0.0.1:$AMQP_PORT/ node $NODENAME [$(since "$t0")]"
    else
        say "$RMQ_NAME: already running (pid $(rmq_pid)) on 127.0.0.1:$AMQP_PORT"
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

# A node still booting (its AMQP port not open yet: Ctrl-C during `make run`'s start) cannot
# be reached by rabbitmqctl yet, and its VM drops a SIGTERM that comes before its signal
# handler is up: so SIGTERM goes to its whole process group (the wrapper and the VM: one
# session since rmq_launch's setsid) every second until the group is gone, SIGKILL after
# $TIMEOUT s. A SIGTERM is RabbitMQ's own clean shutdown (>= 3.8).
rmq_signal_stop() {
    local group=$1 deadline=$((SECONDS + TIMEOUT)) next=0
    while kill -0 -- "-$group" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            kill -KILL -- "-$group" 2>/dev/null || true
            break
        fi
        if ((SECONDS >= next)); then
            kill -TERM -- "-$group" 2>/dev/null || true
            next=$((SECONDS + 1))
        fi
        sleep 0.1
    done
}

rmq_stop() {
    local pid launcher group
    launcher=$(cat "$RMQ_LAUNCHER_PID" 2>/dev/null || true)
    if pid=$(rmq_pid); then
        group=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ') || true
        if ! listening "$AMQP_PORT" && [[ -n $launcher && $group == "$launcher" ]]; then
            rmq_signal_stop "$group"
        elif ! timeout 60 env "${RMQ_ENV[@]}" "$RMQ_BIN/rabbitmqctl" -q stop >>"$RMQ_OUT" 2>&1 \
            || ! wait_gone "$pid" 30; then
            # Clean shutdown via the CLI; if the node does not answer, signal it.
            err "$RMQ_NAME: rabbitmqctl stop did not work, sending SIGTERM to $pid"
            kill -TERM "$pid" 2>/dev/null || true
            wait_gone "$pid" 15 || kill -KILL "$pid" 2>/dev/null || true
        fi
        # The shell wrapper exits on its own once the VM is gone.
        [[ $launcher == "$pid" ]] || wait_gone "$launcher" 5 || kill -KILL "$launcher" 2>/dev/null || true
        say "$RMQ_NAME: stopped"
    else
        say "$RMQ_NAME: not running"
    fi
    rm -f "$RMQ_PID_FILE" "$RMQ_LAUNCHER_PID"
}

rmq_kill() {
    local pid
    if ! pid=$(rmq_pid); then
        say "$RMQ_NAME: not running"
        return 0
    fi
    kill -KILL "$pid"
    wait_gone "$pid" 10 || die "$RMQ_NAME: pid $pid survived SIGKILL"
    say "$RMQ_NAME: killed (pid $pid)"
}

# Each VM registers with the private epmd on $EPMD_PORT, which outlives the nodes: stop it
# once they are all gone. epmd only agrees to die when no node is registered, so a node
# still running keeps it.
epmd_stop() {
    if command -v epmd >/dev/null && ERL_EPMD_PORT=$EPMD_PORT epmd -names >/dev/null 2>&1; then
        ERL_EPMD_PORT=$EPMD_PORT epmd -kill >/dev/null 2>&1 || true
    fi
}

# Launch the given nodes that are down, all at once (a clustered node that was not the last
# to stop waits for its peers during boot); rmq_wait_nodes then waits for each.
RMQ_SEL=() RMQ_LAUNCHED=() RMQ_LOG_FROM=() RMQ_OUT_FROM=()
rmq_launch_nodes() {
    local n i
    RMQ_SEL=("$@") RMQ_LAUNCHED=() RMQ_LOG_FROM=() RMQ_OUT_FROM=()
    for n in "$@"; do
        rmq_node "$n"
        if rmq_pid >/dev/null; then
            RMQ_LAUNCHED+=(0)
        elif listening "$AMQP_PORT" || listening "$DIST_PORT"; then
            die "$n: port $AMQP_PORT or $DIST_PORT is taken by another process"
        else
            RMQ_LAUNCHED+=(1)
        fi
    done
    # A fresh cluster only when every node is down: one node forgetting the cluster alone
    # could not rejoin it.
    local fresh=${QH_FRESH_BROKER:-0}
    [[ " ${RMQ_LAUNCHED[*]} " != *" 0 "* ]] || fresh=0
    for i in "${!RMQ_SEL[@]}"; do
        rmq_node "${RMQ_SEL[i]}"
        RMQ_LOG_FROM+=("$(size_of "$RMQ_LOG")")
        RMQ_OUT_FROM+=("$(size_of "$RMQ_OUT")")
        if ((RMQ_LAUNCHED[i])); then QH_FRESH_BROKER=$fresh rmq_launch; fi
    done
}

rmq_wait_nodes() {
    local i status=0
    for i in "${!RMQ_SEL[@]}"; do
        rmq_node "${RMQ_SEL[i]}"
        rmq_start "${RMQ_LAUNCHED[i]}" "$1" "${RMQ_LOG_FROM[i]}" "${RMQ_OUT_FROM[i]}" || status=1
    done
    return $status
}

# rabbit2 and rabbit3 join rabbit1's cluster, unless they are in it already (their
# membership survives restarts: only a fresh node needs it). Both at once.
rmq_join() {
    local seed=qh-cluster-rabbit1@localhost n pids=() status=0
    for n in rabbit2 rabbit3; do
        rmq_node "$n"
        if rmq rabbitmqctl -q cluster_status --formatter json 2>/dev/null | grep -qF "\"$seed\""; then
            continue
        fi
        {
            rmq rabbitmqctl -q stop_app >>"$RMQ_OUT" 2>&1 \
                && rmq rabbitmqctl -q join_cluster "$seed" >>"$RMQ_OUT" 2>&1 \
                && rmq rabbitmqctl -q start_app >>"$RMQ_OUT" 2>&1 \
                && say "$n: joined the cluster of rabbit1"
        } &
        pids+=($!)
        BG_PIDS+=($!)
    done
    for n in "${pids[@]}"; do wait "$n" || status=1; done
    BG_PIDS=()
    if ((status)); then
        for n in rabbit2 rabbit3; do rmq_node "$n" && show_log "$RMQ_OUT" 8; done
        err "rabbitmq: joining the cluster failed"
        return 1
    fi
    rmq_node rabbit1
    local running
    running=$(rmq rabbitmqctl -q cluster_status --formatter json \
        | grep -o '"running_nodes":\[[^]]*\]' | grep -o '@localhost' | wc -l) || true
    say "rabbitmq: $running nodes running in one cluster"
}

# The node leading a quorum queue (leader), or all its members, asked of the first node
# that answers.
rmq_queue_nodes() {
    local n found
    for n in "${RMQ_NODES[@]}"; do
        rmq_node "$n"
        rmq_pid >/dev/null || continue
        if found=$(rmq rabbitmqctl -q list_queues name "$2" --no-table-headers 2>/dev/null \
            | awk -v q="$1" '$1 == q { $1 = ""; print }') && [[ -n $found ]]; then
            grep -o 'rabbit[0-9]@localhost' <<<"$found" | cut -d@ -f1 | sort | tr '\n' ' ' | sed 's/ $/\n/'
            return 0
        fi
    done
    die "no running node knows a quorum queue named $1"
}

# rabbitmqctl, with the node's environment (its cookie, its name), on the first node that runs:
# the tests set policies with it (tests/integration/test_refused_publish.py).
rmq_ctl() {
    local n
    for n in "${RMQ_NODES[@]}"; do
        rmq_node "$n"
        if rmq_pid >/dev/null; then
            rmq rabbitmqctl "$@"
            return
        fi
    done
    die "no RabbitMQ node of the $PROFILE profile is running"
}

# --- Actions --------------------------------------------------------------------------
# Undo a failed start: stop what this invocation started (silently: the failure is the news).
undo_start() {
    undo_launched >/dev/null 2>&1
    exit 1
}

undo_launched() {
    local n i pids=()
    for n in "${PG_LAUNCHED[@]}"; do pg_node "$n" && pg_stop || true; done
    for i in "${!RMQ_SEL[@]}"; do
        if ((RMQ_LAUNCHED[i])); then
            (rmq_node "${RMQ_SEL[i]}" && rmq_stop) & # all at once, as do_stop does
            pids+=($!)
        fi
    done
    for n in "${pids[@]}"; do wait "$n" || true; done
}

# Stopped while starting (SIGTERM from `make run`'s Ctrl-C, or a Ctrl-C here): a stop asked
# for, not a failure, so no error: stop what this call started. Bash runs the trap once the
# command in progress has returned, so a node's launch has recorded its pid by then.
start_interrupted() {
    trap '' INT TERM HUP
    local pid
    for pid in "${BG_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    undo_launched
    exit "$1"
}

# PostgreSQL, the primary first: a standby is cloned from it.
pg_start_all() {
    local primary n
    primary=$(pg_primary)
    pg_node "$primary"
    pg_start || { err "$primary: failed to start"; return 1; }
    for n in "${PG_NODES[@]}"; do
        [[ $n != "$primary" ]] || continue
        pg_node "$n"
        pg_start || { err "$n: failed to start"; return 1; }
        pg_node "$primary"
        pg_wait_streaming "$n" || return 1
    done
}

do_start() {
    local t0
    trap 'start_interrupted 130' INT
    trap 'start_interrupted 143' TERM
    trap 'start_interrupted 129' HUP
    t0=$(now_ms)
    ensure_software
    write_env_file
    # RabbitMQ takes the longest to boot, so launch it first and set up PostgreSQL while
    # it boots; only then wait for it.
    if [[ $ONLY != postgres ]]; then rmq_launch_nodes "${RMQ_NODES[@]}"; fi
    if [[ $ONLY != rabbitmq ]]; then pg_start_all || undo_start; fi
    if [[ $ONLY != postgres ]]; then
        rmq_wait_nodes "$t0" || { err "rabbitmq: failed to start"; undo_start; }
        if [[ $PROFILE == cluster ]]; then rmq_join || undo_start; fi
    fi
    say "ready in $(since "$t0"); variables in ${ENV_FILE#"$REPO"/}"
}

do_stop() {
    local n pids=()
    # No binaries, no state: nothing can be running.
    PG_BIN=$(find_pg_bin 2>/dev/null) || PG_BIN=
    if [[ $ONLY != postgres ]]; then
        if [[ -x $RMQ_BIN/rabbitmqctl ]]; then
            # All at once: stopping one node after another would make each a leader in turn.
            for n in "${RMQ_NODES[@]}"; do
                (rmq_node "$n" && rmq_stop) &
                pids+=($!)
            done
            for n in "${pids[@]}"; do wait "$n"; done
            epmd_stop
        else
            say "rabbitmq: not running"
        fi
    fi
    if [[ $ONLY != rabbitmq ]]; then
        for n in "${PG_NODES[@]}"; do pg_node "$n" && pg_stop; done
    fi
}

do_status() {
    local up=0 pid n role
    PG_BIN=$(find_pg_bin 2>/dev/null) || PG_BIN=
    for n in "${PG_NODES[@]}"; do
        pg_node "$n"
        if [[ -n $PG_BIN ]] && pg_running && listening "$PG_PORT"; then
            role=
            if [[ $PROFILE == cluster ]]; then
                PSQL=$PG_BIN/psql
                role=$(pg_psql -tAc "SELECT CASE WHEN pg_is_in_recovery() THEN ' standby' ELSE ' primary' END" 2>/dev/null || echo " (not answering)")
            fi
            say "$n: up$role (pid $(pg_pid)) on 127.0.0.1:$PG_PORT"
            up=$((up + 1))
        else
            say "$n: down"
        fi
    done
    for n in "${RMQ_NODES[@]}"; do
        rmq_node "$n"
        if pid=$(rmq_pid) && listening "$AMQP_PORT"; then
            say "$n: up (pid $pid) on 127.0.0.1:$AMQP_PORT"
            up=$((up + 1))
        elif [[ -n ${pid:-} ]]; then
            say "$n: starting (pid $pid), AMQP port not open yet"
        else
            say "$n: down"
        fi
    done
    ((up == ${#PG_NODES[@]} + ${#RMQ_NODES[@]})) || exit 3
}

# One node: the fault tests' handle on the cluster.
do_node() {
    ensure_software
    if [[ " ${PG_NODES[*]} " == *" $ARG "* ]]; then
        pg_node "$ARG"
        case $ACTION in
            node-stop) pg_stop ;;
            node-kill) pg_kill ;;
            node-start)
                if ! pg_is_primary && ! pg_running; then
                    local standby=$ARG primary
                    primary=$(pg_primary)
                    pg_start || die "$standby: failed to start"
                    pg_node "$primary" && pg_wait_streaming "$standby" || exit 1
                else
                    pg_start || die "$ARG: failed to start"
                fi
                ;;
        esac
        return
    fi
    rmq_node "$ARG"
    case $ACTION in
        node-stop) rmq_stop ;;
        node-kill) rmq_kill ;;
        node-start)
            rmq_launch_nodes "$ARG"
            rmq_wait_nodes "$(now_ms)" || die "$ARG: failed to start"
            ;;
    esac
}

case $ACTION in
    start) do_start ;;
    stop) do_stop ;;
    status) do_status ;;
    env)
        write_env_file
        cat "$ENV_FILE"
        ;;
    node-start | node-stop | node-kill) do_node ;;
    pg-promote) ensure_software && pg_promote ;;
    pg-primary) pg_primary ;;
    leader) rmq_queue_nodes "$ARG" leader ;;
    members) rmq_queue_nodes "$ARG" members ;;
    rabbitmqctl) rmq_ctl "${CTL_ARGS[@]}" ;;
esac
