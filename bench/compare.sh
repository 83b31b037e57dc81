#!/usr/bin/env bash
# Runs the load tool's idle, fanout and rooms scenarios against Socket.IO
# 4.8 (bench/socketio/server.js on Node) and Centrifugo 6.9.1 on this
# machine, as run.sh runs them against caasd: the server pinned to core
# $SERVER_CPU (Centrifugo with GOMAXPROCS=1; Node runs JavaScript on one
# thread anyway), the load tool to core $LOAD_CPU, a fresh server for every
# case. Neither has Kafka, Redis or a store behind it, so core 1 carries
# only the load tool here.
#
#   bench/compare.sh [socketio|centrifugo|all] [idle|fanout|rooms|all]
#
# Results (JSON lines, "target" says whose) go to $BENCH_WORK/results.jsonl
# (a new temp directory by default); Centrifugo's CPU and heap profiles to
# $BENCH_WORK/profiles. LOAD_ARGS adds load-tool flags, e.g.
#   LOAD_ARGS="-conns=500 -hold=2s -fanout-members=100 -rooms-conns=200" bench/compare.sh
# Centrifugo is built from its module (github.com/centrifugal/centrifugo/v6
# v6.9.1, a few minutes the first time); Socket.IO comes from npm
# (bench/socketio/package-lock.json).
set -euo pipefail

TARGETS=${1:-all}
SCENARIO=${2:-all}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_WORK:-$(mktemp -d /tmp/caasd-compare.XXXXXX)}
PORT=${BENCH_PORT:-18081}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
CASE_TIMEOUT=${CASE_TIMEOUT:-900}
CENTRIFUGO_VERSION=v6.9.1
SECRET="bench-secret-$RANDOM-$RANDOM-$RANDOM-$RANDOM"
mkdir -p "$WORK"/{bin,profiles}
RESULTS="$WORK/results.jsonl"

case "$TARGETS" in socketio|centrifugo) ;; all) TARGETS="socketio centrifugo" ;; *)
	echo "usage: $0 [socketio|centrifugo|all] [idle|fanout|rooms|all]" >&2; exit 2 ;;
esac
case "$SCENARIO" in idle|fanout|rooms) ;; all) SCENARIO="idle fanout rooms" ;; *)
	echo "usage: $0 [socketio|centrifugo|all] [idle|fanout|rooms|all]" >&2; exit 2 ;;
esac

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

SERVER_PID=
cleanup() {
	set +e
	stop "$SERVER_PID"
	lo_rps_restore
	log "work directory: $WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
lo_rps_apply

log "building the load tool into $WORK/bin"
(cd "$ROOT" && go build -o "$WORK/bin/load" ./bench/cmd/load)
for t in $TARGETS; do
	case "$t" in
	socketio)
		log "installing socket.io from bench/socketio/package-lock.json"
		npm ci --no-audit --no-fund --prefix "$ROOT/bench/socketio" >&2 ;;
	centrifugo)
		log "building centrifugo $CENTRIFUGO_VERSION into $WORK/bin"
		GOBIN="$WORK/bin" go install "github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION" ;;
	esac
done

CASE_N=0
# start_server TARGET: a fresh server in $CASE_DIR, pinned to $SERVER_CPU.
start_server() {
	CASE_N=$((CASE_N + 1))
	CASE_DIR="$WORK/case-$CASE_N-$1"
	mkdir -p "$CASE_DIR"
	case "$1" in
	socketio)
		env PORT="$PORT" JWT_SECRET="$SECRET" \
			taskset -c "$SERVER_CPU" node --expose-gc "$ROOT/bench/socketio/server.js" >"$CASE_DIR/server.out" 2>"$CASE_DIR/server.log" &
		SERVER_PID=$! ;;
	centrifugo)
		cat >"$CASE_DIR/config.json" <<-EOF
		{
		  "http_server": {"address": "127.0.0.1", "port": $PORT},
		  "log": {"level": "error"},
		  "client": {"token": {"hmac_secret_key": "$SECRET"}},
		  "channel": {"without_namespace": {"allow_subscribe_for_client": true, "allow_publish_for_subscriber": true}},
		  "debug": {"enabled": true},
		  "prometheus": {"enabled": true}
		}
		EOF
		env GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$WORK/bin/centrifugo" -c "$CASE_DIR/config.json" \
			>"$CASE_DIR/server.out" 2>"$CASE_DIR/server.log" &
		SERVER_PID=$! ;;
	esac
	wait_port "$PORT" 30 || { log "$1 did not start"; tail -5 "$CASE_DIR/server.log" >&2; return 1; }
}

# run_case TARGET ARGS...: a fresh server, one load run, the server stopped.
run_case() {
	local target=$1
	shift
	start_server "$target"
	log "case $CASE_N: $target pid $SERVER_PID (core $SERVER_CPU); load $* (core $LOAD_CPU)"
	timeout -s INT "$CASE_TIMEOUT" taskset -c "$LOAD_CPU" "$WORK/bin/load" -target "$target" \
		-addr "127.0.0.1:$PORT" -pid "$SERVER_PID" -jwt-secret "$SECRET" \
		-profile-dir "$WORK/profiles/$target" -timeout "$((CASE_TIMEOUT - 10))s" "$@" ${LOAD_ARGS:-} \
		| tee -a "$RESULTS" || log "load run failed: $target $*"
	stop "$SERVER_PID"
	SERVER_PID=
}

# fanout_rates TARGET: the fanout ladder, from where each server still
# keeps p99 under 100 ms on this machine (1,000 members: 100 msgs/s is
# 100,000 deliveries/s); FANOUT_RATES sets it for both.
fanout_rates() {
	if [ -n "${FANOUT_RATES:-}" ]; then echo "$FANOUT_RATES"
	elif [ "$1" = socketio ]; then echo 10,25,50,75,100
	else echo 100,200,300,400,500,1000
	fi
}

log "$(machine_line)"
log "caasd commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown) (load tool), node $(node --version), $(date -u)"
for t in $TARGETS; do
	for s in $SCENARIO; do
		case "$s" in
		idle) for n in 10000 19000; do run_case "$t" -scenario=idle -conns="$n"; done ;;
		fanout) run_case "$t" -scenario=fanout -fanout-rates="$(fanout_rates "$t")" ;;
		rooms) run_case "$t" -scenario=rooms ;;
		esac
	done
done

if [ -e "$WORK/bin/centrifugo" ]; then
	for f in "$WORK"/profiles/centrifugo/*.pprof; do
		[ -e "$f" ] || continue
		go tool pprof -top -nodecount=30 "$WORK/bin/centrifugo" "$f" >"$f.top.txt" 2>/dev/null || true
	done
fi
log "results: $RESULTS"
