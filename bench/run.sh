#!/usr/bin/env bash
# Runs caasd's load benchmarks on this machine, in production mode:
#
#   bench/run.sh [idle|fanout|rooms|persist|all]   (default: all)
#
# It builds caasd and the bench tools; then for every case it starts a
# fresh stack: a real redis-server and the services processes (kfake Kafka,
# FerretDB) on core $SERVICES_CPU (the store on $STORE_CPU), and caasd pinned to core $SERVER_CPU with
# GOMAXPROCS=1; it runs the load tool pinned to core $LOAD_CPU and stops the
# stack again, so that no case inherits another's backlog. Results (JSON
# lines), logs, CPU/heap profiles and their `go tool pprof -top` go to
# $BENCH_WORK (a new temp directory by default). Everything is bounded in
# time and stopped on exit.
#
# LOAD_ARGS adds (overriding) flags of the load tool, e.g. for a quick try:
#   LOAD_ARGS="-conns=500 -hold=2s -fanout-members=100" bench/run.sh all
# CAASD_REV picks the caasd commit to build (default HEAD; "worktree" for
# the working tree). The store is FerretDB, which indexes only _id, so caasd
# runs with ROOM_SEQ_RESTORE=true, as on its embedded default.
set -euo pipefail

SCENARIO=${1:-all}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_WORK:-$(mktemp -d /tmp/caasd-bench.XXXXXX)}
PORT=${BENCH_PORT:-18080}
REDIS_PORT=${BENCH_REDIS_PORT:-16390}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SERVICES_CPU=${SERVICES_CPU:-1} # redis and the services share the load's core, leaving caasd's to caasd
STORE_CPU=${STORE_CPU:-$SERVICES_CPU} # the store's core(s), to give it one of its own
CASE_TIMEOUT=${CASE_TIMEOUT:-900}
SECRET="bench-secret-$RANDOM-$RANDOM-$RANDOM"
mkdir -p "$WORK"/{bin,profiles}
RESULTS="$WORK/results.jsonl"

case "$SCENARIO" in idle|fanout|rooms|persist|all) ;; *)
	echo "usage: $0 [idle|fanout|rooms|persist|all]" >&2; exit 2 ;;
esac

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

CAASD_PID= SERVICES_PID= MONGO_PID= REDIS_PID=
stop_stack() {
	stop "$CAASD_PID"; CAASD_PID=
	stop "$SERVICES_PID"; SERVICES_PID=
	stop "$MONGO_PID"; MONGO_PID=
	stop "$REDIS_PID"; REDIS_PID=
}
cleanup() {
	set +e
	stop_stack
	lo_rps_restore
	log "work directory: $WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
lo_rps_apply

CAASD_REV=${CAASD_REV:-HEAD}
if [ "$CAASD_REV" = worktree ]; then
	CAASD_SRC=$ROOT
	COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)+worktree"
else
	CAASD_SRC="$WORK/src"
	COMMIT=$(git -C "$ROOT" rev-parse --short "$CAASD_REV")
	mkdir -p "$CAASD_SRC"
	git -C "$ROOT" archive --format=tar "$CAASD_REV" | tar -x -C "$CAASD_SRC"
fi
log "building caasd $COMMIT and the bench tools into $WORK/bin"
(cd "$CAASD_SRC" && go build -o "$WORK/bin/caasd" ./cmd/caasd)
(cd "$ROOT" && go build -o "$WORK/bin/load" ./bench/cmd/load && go build -o "$WORK/bin/services" ./bench/cmd/services)

CASE_N=0
CASE_SCENARIO=
# store_nice is the CPU priority of the store (FerretDB) for this case. The
# store shares core 1 with Kafka, Redis and the load tool, more than that
# core can carry; where the store is not what is measured (idle, fanout,
# rooms: persistence runs after the fan-out and apart from it) it runs at
# nice 19, so that its backlog waits rather than Kafka's and Redis's
# answers, which are on the delivery path, as with the store on hosts of
# its own. In persist the store is what is measured and runs at nice 0.
# MONGO_NICE sets it for every case.
store_nice() {
	if [ -n "${MONGO_NICE:-}" ]; then echo "$MONGO_NICE"
	elif [ "$CASE_SCENARIO" = persist ]; then echo 0
	else echo 19
	fi
}
# start_stack: redis, services and caasd for one case, in $CASE_DIR.
start_stack() {
	CASE_N=$((CASE_N + 1))
	CASE_DIR="$WORK/case-$CASE_N"
	mkdir -p "$CASE_DIR"/{redis,data,caasd-data}
	taskset -c "$SERVICES_CPU" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$CASE_DIR/redis" \
		--appendonly yes --appendfsync everysec --save "" --loglevel warning >"$CASE_DIR/redis.log" 2>&1 &
	REDIS_PID=$!
	wait_port "$REDIS_PORT" 20 || { log "redis did not start"; return 1; }

	# Kafka and MongoDB run as two processes, as in production.
	taskset -c "$SERVICES_CPU" "$WORK/bin/services" -only kafka -data "$CASE_DIR/data" -partitions "${KAFKA_PARTITIONS:-8}" -kafka-sync="${KAFKA_SYNC:-false}" -max-run "$((CASE_TIMEOUT + 120))s" -pprof 127.0.0.1:0 \
		>"$CASE_DIR/kafka.out" 2>"$CASE_DIR/kafka.err" &
	SERVICES_PID=$!
	nice -n "$(store_nice)" taskset -c "$STORE_CPU" "$WORK/bin/services" -only mongo -data "$CASE_DIR/data" -max-run "$((CASE_TIMEOUT + 120))s" -pprof 127.0.0.1:0 \
		>"$CASE_DIR/mongo.out" 2>"$CASE_DIR/mongo.err" &
	MONGO_PID=$!
	for _ in $(seq 300); do
		grep -q '^KAFKA_BROKERS=' "$CASE_DIR/kafka.out" 2>/dev/null && grep -q '^MONGO_URI=' "$CASE_DIR/mongo.out" 2>/dev/null && break
		sleep 0.2
	done
	grep -q '^KAFKA_BROKERS=' "$CASE_DIR/kafka.out" || { log "kafka did not start"; tail -5 "$CASE_DIR/kafka.err" >&2; return 1; }
	grep -q '^MONGO_URI=' "$CASE_DIR/mongo.out" || { log "mongo did not start"; tail -5 "$CASE_DIR/mongo.err" >&2; return 1; }
	KAFKA_BROKERS=$(sed -n 's/^KAFKA_BROKERS=//p' "$CASE_DIR/kafka.out")
	MONGO_URI=$(sed -n 's/^MONGO_URI=//p' "$CASE_DIR/mongo.out")

	env HTTP_ADDR="127.0.0.1:$PORT" JWT_SECRET="$SECRET" \
		KAFKA_BROKERS="$KAFKA_BROKERS" REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0" MONGO_URI="$MONGO_URI" \
		DATA_DIR="$CASE_DIR/caasd-data" LOG_LEVEL=warn GOMAXPROCS=1 GOGC="${CAASD_GOGC:-100}" \
		RATE_LIMIT_PER_MINUTE=1000000000 RATE_LIMIT_PER_HOUR=1000000000 SPAM_REPEAT_COUNT=1000000 \
		PERSISTENCE_CONFIRMATION_TIMEOUT_MS="${PERSISTENCE_CONFIRMATION_TIMEOUT_MS:-30000}" \
		ROOM_SEQ_RESTORE="${ROOM_SEQ_RESTORE:-true}" \
		taskset -c "$SERVER_CPU" "$WORK/bin/caasd" >"$CASE_DIR/caasd.out" 2>"$CASE_DIR/caasd.log" &
	CAASD_PID=$!
	for _ in $(seq 300); do
		curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && return 0
		kill -0 "$CAASD_PID" 2>/dev/null || break
		sleep 0.2
	done
	log "caasd did not become ready"; tail -5 "$CASE_DIR/caasd.log" >&2; return 1
}

# run_case ARGS...: a fresh stack, one load run, the stack stopped.
run_case() {
	start_stack
	log "case $CASE_N: caasd pid $CAASD_PID (core $SERVER_CPU), kafka $KAFKA_BROKERS, mongo $MONGO_URI (core $STORE_CPU, nice $(store_nice)); load $* (core $LOAD_CPU)"
	timeout -s INT "$CASE_TIMEOUT" taskset -c "$LOAD_CPU" "$WORK/bin/load" \
		-addr "127.0.0.1:$PORT" -pid "$CAASD_PID" -services-pid "$SERVICES_PID" -mongo-pid "$MONGO_PID" -redis-pid "$REDIS_PID" -jwt-secret "$SECRET" \
		-profile-dir "$WORK/profiles" -mongo-uri "$MONGO_URI" -timeout "$((CASE_TIMEOUT - 10))s" "$@" ${LOAD_ARGS:-} \
		| tee -a "$RESULTS" || log "load run failed: $*"
	stop_stack
}

scenario() {
	CASE_SCENARIO=$1
	case "$1" in
	idle)
		for n in 10000 19000; do
			for b in ${BATCHES:-false true}; do run_case -scenario=idle -conns="$n" -batch="$b"; done
		done ;;
	fanout) run_case -scenario=fanout ;;
	rooms) for b in ${BATCHES:-false true}; do run_case -scenario=rooms -batch="$b"; done ;;
	persist) run_case -scenario=persist ;;
	esac
}

log "$(machine_line)"
log "caasd commit $COMMIT, $(date -u)"
if [ "$SCENARIO" = all ]; then
	for s in idle fanout rooms persist; do scenario "$s"; done
else
	scenario "$SCENARIO"
fi

for f in "$WORK"/profiles/*.pprof; do
	[ -e "$f" ] || continue
	go tool pprof -top -nodecount=30 "$WORK/bin/caasd" "$f" >"$f.top.txt" 2>/dev/null || true
	go tool pprof -top -cum -nodecount=40 "$WORK/bin/caasd" "$f" >"$f.cum.txt" 2>/dev/null || true
done
log "results: $RESULTS; profiles: $WORK/profiles (*.top.txt, *.cum.txt)"
