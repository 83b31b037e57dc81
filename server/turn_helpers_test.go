package server_test

import (
	"errors"
	"testing"

	"github.com/pion/stun/v3"

	"github.com/caasd/caasd/internal/coturntest"
	"github.com/caasd/caasd/internal/testenv"
)

// coturnRealm is the realm of every test coturn; turn.LegacyServer uses it too.
const coturnRealm = "caas.local"

// startCoturn starts coturn in TURN REST mode (--use-auth-secret) with
// secret on 127.0.0.1 and a free port, waits until it answers, and returns
// the port and an idempotent stop function (also run at cleanup).
func startCoturn(t testing.TB, secret string) (port int, stop func()) {
	t.Helper()
	return coturntest.Start(t, secret, coturnRealm)
}

// runCoturn starts coturn with secret on port (e.g. again after its stop)
// and returns its stop function.
func runCoturn(t testing.TB, secret string, port int) (stop func()) {
	t.Helper()
	return coturntest.StartOnPort(t, secret, coturnRealm, port)
}

// freeUDPTCPPort returns a port on 127.0.0.1 free for both TCP and UDP.
var freeUDPTCPPort = testenv.FreePort

// turnAllocate connects to a turn: URL as a WebRTC client would, allocates
// a relay with the credentials and checks that data flows both ways
// between the relay and a local UDP peer. It returns the allocation error.
var turnAllocate = coturntest.Allocate

// logBuffer is a bytes.Buffer safe for concurrent writers and readers.
type logBuffer = testenv.SyncBuffer

// assertUnauthorized checks that err is coturn's 401 answer, as pion reports it.
func assertUnauthorized(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: allocate succeeded, want 401", what)
	}
	var te *stun.TurnError
	if !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeUnauthorized {
		t.Fatalf("%s: error %v (%T), want a *stun.TurnError with code 401", what, err, err)
	}
}
