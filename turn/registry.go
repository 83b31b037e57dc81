package turn

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Config fields left at zero.
const (
	// DefaultProbeInterval is the default Config.ProbeInterval.
	DefaultProbeInterval = 10 * time.Second
	// DefaultProbeTimeout is the default Config.ProbeTimeout.
	DefaultProbeTimeout = 3 * time.Second
	// DefaultFailureThreshold is the default Config.FailureThreshold.
	DefaultFailureThreshold = 3
	// DefaultMaxServers is the default Config.MaxServers.
	DefaultMaxServers = 64
	// DefaultProbeUserID is the default Config.ProbeUserID.
	DefaultProbeUserID = "caasd-probe"
)

// Config configures a Registry. Zero fields take the documented defaults.
type Config struct {
	// Servers are the initial servers (for example from ParseServers or LegacyServer).
	Servers []ServerConfig
	// CredentialTTL is the lifetime of minted credentials; default 24h.
	CredentialTTL time.Duration
	// ProbeInterval is the time between health probes of each server; default 10s.
	ProbeInterval time.Duration
	// ProbeTimeout bounds one probe of one server (all its transports); default 3s.
	ProbeTimeout time.Duration
	// FailureThreshold is how many probes in a row must fail before a
	// healthy server is marked unhealthy; default 3.
	FailureThreshold int
	// MaxServers bounds the number of servers; default 64.
	MaxServers int
	// ProbeUserID is the user ID of the credentials probes use; default "caasd-probe".
	ProbeUserID string
	// ProbeInsecureSkipVerify disables certificate verification of TLS
	// probes (for self-signed test or internal certificates).
	ProbeInsecureSkipVerify bool
	// Now is the clock; default time.Now.
	Now func() time.Time `json:"-"`
}

// withDefaults fills zero fields and rejects negative ones.
func (c Config) withDefaults() (Config, error) {
	neg := func(field string) error {
		return fmt.Errorf("%w: %s must not be negative", ErrInvalidConfig, field)
	}
	switch {
	case c.CredentialTTL < 0:
		return c, neg("CredentialTTL")
	case c.ProbeInterval < 0:
		return c, neg("ProbeInterval")
	case c.ProbeTimeout < 0:
		return c, neg("ProbeTimeout")
	case c.FailureThreshold < 0:
		return c, neg("FailureThreshold")
	case c.MaxServers < 0:
		return c, neg("MaxServers")
	}
	if c.CredentialTTL == 0 {
		c.CredentialTTL = DefaultCredentialTTL
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = DefaultFailureThreshold
	}
	if c.MaxServers == 0 {
		c.MaxServers = DefaultMaxServers
	}
	if c.ProbeUserID == "" {
		c.ProbeUserID = DefaultProbeUserID
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// ServerStatus is the public view of a server: its configuration without
// any secret, and its health.
type ServerStatus struct {
	// ID is the server's ID.
	ID string `json:"id"`
	// Host is the server's host name or IP address.
	Host string `json:"host"`
	// Port is the plain TURN/STUN port.
	Port int `json:"port"`
	// TLSPort is the TURN-over-TLS port, 0 if none.
	TLSPort int `json:"tls_port,omitempty"`
	// Realm is the server's realm.
	Realm string `json:"realm"`
	// Transports are the offered transports.
	Transports []Transport `json:"transports"`
	// HasPreviousSecret reports whether a previous secret is configured (rotation in progress).
	HasPreviousSecret bool `json:"has_previous_secret"`
	// Healthy is false until the first probe passes, and after
	// FailureThreshold failed probes in a row.
	Healthy bool `json:"healthy"`
	// ConsecutiveFailures counts the failed probes since the last passing one.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// LastProbe is when the last probe finished; zero if never.
	LastProbe time.Time `json:"last_probe,omitzero"`
	// LastSuccess is when the last passing probe finished; zero if never.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastError is the last probe's error, empty after a passing probe.
	LastError string `json:"last_error,omitempty"`
}

// server is one registry entry. cfg is immutable; the health fields are
// guarded by Registry.mu. Update replaces the entry, so a probe result for
// a stale entry is recognised and dropped.
type server struct {
	cfg         ServerConfig
	healthy     bool
	failures    int
	lastProbe   time.Time
	lastSuccess time.Time
	lastError   string
	probing     bool // a probe goroutine is running for this entry
	due         bool // probe as soon as Run can
}

// Registry holds the TURN servers, probes their health and builds ICE
// server lists from the healthy ones. Its methods are safe for concurrent use.
//
// New servers (from Config.Servers, Add or Update with a new address) start
// unhealthy and are left out of ICE lists until their first probe passes;
// Run probes them at once when it starts and immediately after Add or
// Update, so the list is accurate within about one ProbeTimeout. Without a
// running Run, no server ever becomes healthy.
type Registry struct {
	cfg     Config
	log     *slog.Logger
	kick    chan struct{} // wakes Run to probe due servers
	running atomic.Bool

	mu      sync.Mutex
	servers []*server // in insertion order

	mTotal, mHealthy prometheus.Gauge
	mCredentials     prometheus.Counter
}

// NewRegistry validates cfg, registers the metrics turn_servers_total,
// turn_servers_healthy and turn_credentials_generated_total on reg (nil
// means no registration) and returns a registry holding cfg.Servers. A nil
// logger discards logs. Call Run to start health probes.
func NewRegistry(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Registry, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Registry{
		cfg:  cfg,
		log:  logger.With("component", "turn"),
		kick: make(chan struct{}, 1),
		mTotal: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "turn_servers_total", Help: "Number of configured TURN servers.",
		}),
		mHealthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "turn_servers_healthy", Help: "Number of TURN servers whose health probes pass.",
		}),
		mCredentials: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "turn_credentials_generated_total", Help: "TURN credentials minted for clients (probe credentials excluded).",
		}),
	}
	for _, s := range cfg.Servers {
		if err := r.Add(s); err != nil {
			return nil, err
		}
	}
	r.cfg.Servers = nil // the registry's own list is authoritative
	if reg != nil {
		for _, c := range []prometheus.Collector{r.mTotal, r.mHealthy, r.mCredentials} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("turn: register metrics: %w", err)
			}
		}
	}
	return r, nil
}

// Add validates c and adds it as a new, not yet healthy server. It fails
// with ErrExists if the ID is taken, ErrTooManyServers if the registry is
// full, or a *FieldError. A running Run probes the server immediately.
func (r *Registry) Add(c ServerConfig) error {
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.indexLocked(c.ID) >= 0 {
		return fmt.Errorf("add %q: %w", c.ID, ErrExists)
	}
	if len(r.servers) >= r.cfg.MaxServers {
		return fmt.Errorf("add %q: %w (max %d)", c.ID, ErrTooManyServers, r.cfg.MaxServers)
	}
	r.servers = append(r.servers, &server{cfg: c, due: true})
	r.updateGaugesLocked()
	r.wake()
	r.log.Info("turn server added", "server", c.ID, "host", c.Host, "port", c.Port)
	return nil
}

// Update replaces the configuration of an existing server, for example to
// rotate its secret. Health state is kept when host, ports and transports
// are unchanged; otherwise the server restarts as not yet healthy. Either
// way a running Run probes it immediately. It fails with ErrNotFound or a
// *FieldError.
func (r *Registry) Update(c ServerConfig) error {
	c = c.withDefaults()
	if err := c.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	i := r.indexLocked(c.ID)
	if i < 0 {
		return fmt.Errorf("update %q: %w", c.ID, ErrNotFound)
	}
	old := r.servers[i]
	s := &server{cfg: c, due: true}
	if old.cfg.Host == c.Host && old.cfg.Port == c.Port && old.cfg.TLSPort == c.TLSPort &&
		slices.Equal(old.cfg.Transports, c.Transports) {
		s.healthy, s.failures = old.healthy, old.failures
		s.lastProbe, s.lastSuccess, s.lastError = old.lastProbe, old.lastSuccess, old.lastError
	}
	r.servers[i] = s
	r.updateGaugesLocked()
	r.wake()
	r.log.Info("turn server updated", "server", c.ID, "host", c.Host, "port", c.Port)
	return nil
}

// Remove deletes the server with the given ID, or returns ErrNotFound.
func (r *Registry) Remove(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := r.indexLocked(id)
	if i < 0 {
		return fmt.Errorf("remove %q: %w", id, ErrNotFound)
	}
	r.servers = slices.Delete(r.servers, i, i+1)
	r.updateGaugesLocked()
	r.log.Info("turn server removed", "server", id)
	return nil
}

// List returns the status of every server, in insertion order. It contains no secrets.
func (r *Registry) List() []ServerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]ServerStatus, 0, len(r.servers))
	for _, s := range r.servers {
		out = append(out, ServerStatus{
			ID:                  s.cfg.ID,
			Host:                s.cfg.Host,
			Port:                s.cfg.Port,
			TLSPort:             s.cfg.TLSPort,
			Realm:               s.cfg.Realm,
			Transports:          slices.Clone(s.cfg.Transports),
			HasPreviousSecret:   !s.cfg.PreviousSecret.IsZero(),
			Healthy:             s.healthy,
			ConsecutiveFailures: s.failures,
			LastProbe:           s.lastProbe,
			LastSuccess:         s.lastSuccess,
			LastError:           s.lastError,
		})
	}
	return out
}

// indexLocked returns the position of id in r.servers, or -1.
func (r *Registry) indexLocked(id string) int {
	return slices.IndexFunc(r.servers, func(s *server) bool { return s.cfg.ID == id })
}

// updateGaugesLocked sets the server gauges from r.servers.
func (r *Registry) updateGaugesLocked() {
	healthy := 0
	for _, s := range r.servers {
		if s.healthy {
			healthy++
		}
	}
	r.mTotal.Set(float64(len(r.servers)))
	r.mHealthy.Set(float64(healthy))
}

// wake asks a running Run to probe due servers now.
func (r *Registry) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}
