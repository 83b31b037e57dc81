package server

import (
	"context"
	"fmt"
	"net/http"

	"github.com/caasd/caasd/admin"
	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/persistence"
	"github.com/caasd/caasd/turn"
)

// webRTC holds the parts behind calls: the TURN registry and the
// recordings repository.
type webRTC struct {
	turn       *turn.Registry
	recordings *persistence.Recordings
}

// newTURN builds the TURN registry from TURN_SERVERS and the legacy
// TURN_HOST / TURN_PORT / TURN_SECRET, and registers its metrics. Errors
// name the variable and never contain a secret.
func (s *Server) newTURN() error {
	c := s.cfg.TURN
	servers, err := turn.ParseServers(c.Servers)
	if err != nil {
		return fmt.Errorf("TURN_SERVERS: %w", err)
	}
	if c.Host != "" {
		legacy, err := turn.LegacyServer(c.Host, c.Port, c.Secret)
		if err != nil {
			return fmt.Errorf("TURN_HOST, TURN_PORT, TURN_SECRET: %w", err)
		}
		servers = append(servers, legacy)
	}
	s.rtc.turn, err = turn.NewRegistry(turn.Config{
		Servers: servers, CredentialTTL: c.CredentialTTL, ProbeInterval: c.ProbeInterval,
		ProbeTimeout: c.ProbeTimeout, FailureThreshold: c.FailureThreshold,
	}, s.logger, s.metrics.Registry)
	if err != nil {
		return fmt.Errorf("TURN_SERVERS / TURN_HOST: %w", err)
	}
	return nil
}

// startWebRTC opens the recordings repository and runs the TURN health
// probes until bg ends.
func (s *Server) startWebRTC(bg context.Context) {
	s.rtc.recordings = persistence.NewRecordings(s.db, s.producer, s.cfg.Kafka.RecordingTopic, s.logger.With("component", "recordings"))
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.rtc.turn.Run(bg) }()
}

// registerWebRTC adds the ICE servers, TURN servers and recordings APIs.
func (s *Server) registerWebRTC(mux *http.ServeMux, verifier *auth.Verifier) {
	(&admin.TURN{Registry: s.rtc.turn, Verifier: verifier, Logger: s.logger.With("component", "turn-api")}).Register(mux)
	(&admin.Recordings{Store: s.rtc.recordings, Verifier: verifier, Logger: s.logger.With("component", "recordings-api")}).Register(mux)
}
