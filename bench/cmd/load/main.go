// Command load drives a running caasd through its native WebSocket
// protocol over loopback and prints one JSON object per scenario on stdout
// (or, with -target, Socket.IO's or Centrifugo's server through theirs, for
// a side-by-side comparison; bench/compare.sh):
//
//	idle     N connections, each authenticated and in a room; caasd's RSS per connection, setup rate and p99
//	fanout   one sender, one room of 1,000 members, rising rates until one is not sustained
//	rooms    5,000 connections in 500 rooms of 10, 10 msgs/s per room; deliveries, p99, caasd's CPU
//	persist  message:persisted latency and rate against the raw bulk-insert rate of the same MongoDB
//
// Users and conversations are created through the admin API with tokens
// minted from -jwt-secret. Every loop is bounded in count and time; the
// whole run is bounded by -timeout. See bench/README.md and bench/run.sh.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is every knob of the load tool, filled from flags.
type config struct {
	target               string
	addr, secret, tenant string
	pid, servicesPID     int
	mongoPID             int
	redisPID             int
	scenario             string
	batch                bool
	srcAddrs, conc       int
	profileDir           string
	trace                bool
	timeout              time.Duration

	idleConns, idleRoomSize int
	idleSettle, idleHold    time.Duration

	fanMembers        int
	fanRates          []int
	fanStep, fanDrain time.Duration
	fanP99            time.Duration

	roomsConns, roomsSize, roomsRate int
	roomsDur                         time.Duration

	persistConns, persistRoomSize int
	persistRate, persistHalfRate  int
	persistDur                    time.Duration
	mongoURI, mongoDB             string
	rawDur                        time.Duration
	rawWriters                    int
}

func main() {
	var c config
	var rates string
	flag.StringVar(&c.target, "target", targetCaasd, "server under test: caasd, or socketio (bench/socketio) or centrifugo for a side-by-side run (bench/compare.sh); persist is caasd's alone")
	flag.StringVar(&c.addr, "addr", "127.0.0.1:18080", "the server's HTTP address (host:port)")
	flag.IntVar(&c.pid, "pid", 0, "caasd's process id, for its RSS and CPU (required)")
	flag.IntVar(&c.servicesPID, "services-pid", 0, "process id of the backing services (Kafka), for their CPU (optional)")
	flag.IntVar(&c.mongoPID, "mongo-pid", 0, "process id of the MongoDB server when it runs apart, counted with -services-pid (optional)")
	flag.IntVar(&c.redisPID, "redis-pid", 0, "process id of redis-server, for its CPU (optional)")
	flag.StringVar(&c.secret, "jwt-secret", "", "caasd's JWT_SECRET (required)")
	flag.StringVar(&c.tenant, "tenant", "bench", "tenant of the benchmark's users")
	flag.StringVar(&c.scenario, "scenario", "all", "idle, fanout, rooms, persist or all")
	flag.BoolVar(&c.batch, "batch", false, "connect with ?batch=1 (idle, rooms; fanout always uses batch=1 unless -fanout-batch=false)")
	flag.IntVar(&c.srcAddrs, "src-addrs", 8, "loopback source addresses to spread connections over (127.0.0.2 …)")
	flag.IntVar(&c.conc, "concurrency", 64, "connections being set up at once")
	flag.StringVar(&c.profileDir, "profile-dir", "", "take caasd CPU and heap profiles into this directory")
	flag.BoolVar(&c.trace, "trace", false, "fanout and rooms: also take a 2 s execution trace of caasd (in each fanout step); into -profile-dir; disturbs what it measures)")
	flag.DurationVar(&c.timeout, "timeout", 20*time.Minute, "bound of the whole run")

	flag.IntVar(&c.idleConns, "conns", 10000, "idle: connections")
	flag.IntVar(&c.idleRoomSize, "room-size", 100, "idle: members per room")
	flag.DurationVar(&c.idleSettle, "settle", 5*time.Second, "idle: wait before reading RSS after setup")
	flag.DurationVar(&c.idleHold, "hold", 20*time.Second, "idle: how long RSS is sampled once steady")

	flag.IntVar(&c.fanMembers, "fanout-members", 1000, "fanout: members of the room")
	flag.StringVar(&rates, "fanout-rates", "100,500,1000,2000", "fanout: send rates (msgs/s), in order")
	flag.DurationVar(&c.fanStep, "fanout-step", 10*time.Second, "fanout: duration of each rate")
	flag.DurationVar(&c.fanDrain, "drain", 5*time.Second, "fanout, rooms, persist: longest wait for late deliveries")
	flag.DurationVar(&c.fanP99, "fanout-p99", 100*time.Millisecond, "fanout: a rate is sustained when p99 is below this and nothing is lost")
	fanBatch := flag.Bool("fanout-batch", true, "fanout: connect with ?batch=1")

	flag.IntVar(&c.roomsConns, "rooms-conns", 5000, "rooms: connections")
	flag.IntVar(&c.roomsSize, "rooms-size", 10, "rooms: members per room")
	flag.IntVar(&c.roomsRate, "rooms-rate", 10, "rooms: messages per second per room")
	flag.DurationVar(&c.roomsDur, "rooms-duration", 30*time.Second, "rooms: duration")

	flag.IntVar(&c.persistConns, "persist-conns", 100, "persist: sending connections")
	flag.IntVar(&c.persistRoomSize, "persist-room-size", 2, "persist: members per room")
	flag.IntVar(&c.persistRate, "persist-rate", 0, "persist: rate of the capacity phase (0: the measured raw insert rate)")
	flag.IntVar(&c.persistHalfRate, "persist-half-rate", 0, "persist: rate of the latency phase (0: half the measured raw insert rate); a fixed rate compares stores of different speeds")
	flag.DurationVar(&c.persistDur, "persist-duration", 20*time.Second, "persist: duration of each phase")
	flag.StringVar(&c.mongoURI, "mongo-uri", "", "persist: MongoDB URI of caasd's store (MONGO_URI)")
	flag.StringVar(&c.mongoDB, "mongo-db", "caas", "persist: caasd's database (MONGO_DB)")
	flag.IntVar(&c.rawWriters, "raw-writers", 1, "persist: concurrent writers of the raw bulk inserts")
	flag.DurationVar(&c.rawDur, "raw-duration", 10*time.Second, "persist: how long the raw bulk inserts run")
	flag.Parse()

	for _, f := range strings.Split(rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fatal(fmt.Errorf("-fanout-rates: bad rate %q", f))
		}
		c.fanRates = append(c.fanRates, n)
	}
	if c.pid <= 0 || c.secret == "" {
		fatal(fmt.Errorf("-pid and -jwt-secret are required"))
	}
	if err := raiseFileLimit(); err != nil {
		fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if err := run(ctx, c, *fanBatch); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "load:", err)
	os.Exit(1)
}

// raiseFileLimit lifts the soft limit of open files to the hard one.
func raiseFileLimit() error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("setrlimit: %w", err)
	}
	return nil
}

// bench is one run: the server under test, the flags, and the output.
type bench struct {
	cfg    config
	srv    *server
	out    *json.Encoder
	prefix string // makes this run's users, rooms and message ids unique
}

func run(ctx context.Context, c config, fanBatch bool) error {
	srv, err := newServer(c.target, c.addr, c.pid, c.secret, c.tenant)
	if err != nil {
		return err
	}
	if c.profileDir != "" {
		if err := os.MkdirAll(c.profileDir, 0o755); err != nil {
			return err
		}
	}
	b := &bench{cfg: c, srv: srv, out: json.NewEncoder(os.Stdout), prefix: strconv.FormatInt(time.Now().UnixNano()/1e6, 36)}
	scenarios := map[string]func(context.Context) (any, error){
		"idle":    b.idle,
		"fanout":  func(ctx context.Context) (any, error) { return b.fanout(ctx, fanBatch) },
		"rooms":   b.rooms,
		"persist": b.persist,
	}
	names := []string{c.scenario}
	if c.scenario == "all" {
		names = []string{"idle", "fanout", "rooms", "persist"}
	}
	for _, n := range names {
		f, ok := scenarios[n]
		if !ok {
			return fmt.Errorf("-scenario: unknown %q", n)
		}
		res, err := f(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		if err := b.out.Encode(res); err != nil {
			return err
		}
	}
	return nil
}

// header starts every scenario's JSON object.
type header struct {
	Target     string `json:"target"`
	Scenario   string `json:"scenario"`
	Batch      bool   `json:"batch"`
	Date       string `json:"date"`
	LoadBefore string `json:"loadavg_before"`
	LoadAfter  string `json:"loadavg_after"`
	// LoadCPU is the load tool's own CPU use over the scenario, % of a core:
	// near 100 means the client, not caasd, may have been the limit.
	LoadCPU float64 `json:"load_tool_cpu_pct"`
	// MongoNice is the store process's nice value (-mongo-pid), when known.
	MongoNice *int `json:"mongo_nice,omitempty"`
}

// begin starts a scenario's header; end completes it.
func (b *bench) begin(name string, batch bool) (*header, *cpuMeter) {
	h := &header{Target: b.cfg.target, Scenario: name, Batch: batch, Date: time.Now().UTC().Format(time.RFC3339), LoadBefore: loadAvg()}
	if b.cfg.mongoPID > 0 {
		if n, err := niceOf(b.cfg.mongoPID); err == nil {
			h.MongoNice = &n
		}
	}
	m, _ := startCPU(os.Getpid())
	return h, m
}

func (h *header) end(m *cpuMeter) {
	h.LoadAfter = loadAvg()
	if m != nil {
		h.LoadCPU = round1(m.percent())
	}
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
