# Shell helpers of bench/run.sh and bench/compare.sh (sourced).

log() { echo "[bench $(date -u +%H:%M:%S)] $*" >&2; }

# stop PID: TERM, up to 20 s, then KILL.
stop() {
	[ -n "$1" ] || return 0
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# wait_port PORT SECONDS
wait_port() {
	for _ in $(seq $(($2 * 5))); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}

# machine_line describes the machine and its load.
machine_line() {
	echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
}
