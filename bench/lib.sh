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

# LO_RPS_CPUS, when set, is written to the loopback's RPS mask for the run
# (e.g. 2 for core 1) and the machine's mask restored at the end
# (lo_rps_restore, from the scripts' cleanup). On loopback the kernel runs a
# receiver's TCP input in the sender's system call, so the clients' share
# of every delivery is billed to the server's core; with RPS the loopback
# hands each packet to the given cores' backlog instead, as a client's
# own host would take it. Needs root.
LO_RPS_FILE=/sys/class/net/lo/queues/rx-0/rps_cpus
LO_RPS_SAVED=
lo_rps_apply() {
	[ -n "${LO_RPS_CPUS:-}" ] || return 0
	LO_RPS_SAVED=$(cat "$LO_RPS_FILE")
	echo "$LO_RPS_CPUS" >"$LO_RPS_FILE" || { log "cannot write $LO_RPS_FILE (root needed)"; return 1; }
	log "loopback RPS mask $(cat "$LO_RPS_FILE") (was $LO_RPS_SAVED)"
}
lo_rps_restore() {
	[ -n "$LO_RPS_SAVED" ] || return 0
	echo "$LO_RPS_SAVED" >"$LO_RPS_FILE" || true
	LO_RPS_SAVED=
}
