package turn

import (
	"context"
	"strings"
	"sync"
	"time"
)

// Run probes every server every ProbeInterval until ctx is done: each
// probe is a real TURN Allocate (then deallocation) over every configured
// transport with freshly minted credentials, bounded by ProbeTimeout. All
// servers are probed at once when Run starts, and a server is probed
// immediately after Add or Update. A probe passes only if every transport
// allocates. One passing probe marks a server healthy; FailureThreshold
// failing probes in a row mark it unhealthy. A server whose previous probe
// is still running is skipped for that round.
//
// Run returns when ctx is done, after every goroutine it started has
// stopped (in-flight probes are cancelled). Only one Run may be active per
// registry; a second concurrent call logs an error and returns at once.
func (r *Registry) Run(ctx context.Context) {
	if !r.running.CompareAndSwap(false, true) {
		r.log.Error("turn: Registry.Run is already running")
		return
	}
	defer r.running.Store(false)

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // runs before wg.Wait: cancels in-flight probes

	ticker := time.NewTicker(r.cfg.ProbeInterval)
	defer ticker.Stop()
	r.startProbes(ctx, &wg, true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			r.startProbes(ctx, &wg, true)
		case <-r.kick:
			r.startProbes(ctx, &wg, false)
		}
	}
}

// startProbes starts a probe goroutine for every idle server (all is
// true) or for every idle server marked due.
func (r *Registry) startProbes(ctx context.Context, wg *sync.WaitGroup, all bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.servers {
		if s.probing || !(all || s.due) {
			continue
		}
		s.probing, s.due = true, false
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.probeAndRecord(ctx, s)
		}()
	}
}

// probeAndRecord probes s and records the result if s is still registered.
func (r *Registry) probeAndRecord(ctx context.Context, s *server) {
	pctx, cancel := context.WithTimeout(ctx, r.cfg.ProbeTimeout)
	err := r.probeServer(pctx, s.cfg)
	cancel()
	if ctx.Err() != nil {
		// Shutting down: a cancelled probe says nothing about the server.
		r.mu.Lock()
		s.probing = false
		r.mu.Unlock()
		return
	}

	now := r.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	s.probing = false
	current := false
	for _, x := range r.servers {
		current = current || x == s
	}
	if !current {
		return // removed or replaced while probing
	}
	s.lastProbe = now
	wasHealthy := s.healthy
	if err == nil {
		s.healthy, s.failures, s.lastSuccess, s.lastError = true, 0, now, ""
		if !wasHealthy {
			r.log.Info("turn server healthy", "server", s.cfg.ID, "host", s.cfg.Host, "port", s.cfg.Port)
		}
	} else {
		s.failures++
		s.lastError = strings.ReplaceAll(err.Error(), "\n", "; ") // one line per transport from errors.Join
		if s.failures >= r.cfg.FailureThreshold {
			s.healthy = false
		}
		r.log.Debug("turn probe failed", "server", s.cfg.ID, "failures", s.failures, "err", err)
		if wasHealthy && !s.healthy {
			r.log.Warn("turn server unhealthy", "server", s.cfg.ID, "host", s.cfg.Host,
				"port", s.cfg.Port, "failures", s.failures, "err", err)
		}
	}
	r.updateGaugesLocked()
}
