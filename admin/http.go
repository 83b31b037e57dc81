// Package admin serves caasd's HTTP API beside the sockets: health and
// readiness, Prometheus metrics, profiling, and the admin API that manages
// conversations, always scoped to the caller's tenant.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/pprof"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/internal/wire"
)

// maxBodyBytes bounds every request body of the API.
const maxBodyBytes = 1 << 20

// Check reports whether one dependency is reachable.
type Check func(ctx context.Context) error

// Ops serves /healthz, /readyz, /metrics and /debug/pprof.
type Ops struct {
	Checks   map[string]Check
	Gatherer prometheus.Gatherer
	Verifier *auth.Verifier
}

// Register adds the operations endpoints to mux.
func (o *Ops) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", o.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}))
	admin := RequireRole(o.Verifier, auth.RoleAdmin)
	mux.Handle("GET /debug/pprof/", admin(http.HandlerFunc(pprof.Index)))
	mux.Handle("GET /debug/pprof/cmdline", admin(http.HandlerFunc(pprof.Cmdline)))
	mux.Handle("GET /debug/pprof/profile", admin(http.HandlerFunc(pprof.Profile)))
	mux.Handle("GET /debug/pprof/symbol", admin(http.HandlerFunc(pprof.Symbol)))
	mux.Handle("GET /debug/pprof/trace", admin(http.HandlerFunc(pprof.Trace)))
}

func (o *Ops) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	names := make([]string, 0, len(o.Checks))
	for n := range o.Checks {
		names = append(names, n)
	}
	sort.Strings(names)
	status := map[string]string{}
	ok := true
	for _, n := range names {
		if err := o.Checks[n](ctx); err != nil {
			status[n] = err.Error()
			ok = false
		} else {
			status[n] = "ok"
		}
	}
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"ready": ok, "checks": status})
}

// RequireRole authenticates the request's JWT and, when role is not empty,
// requires that role. The principal is put in the request context.
func RequireRole(v *auth.Verifier, role string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := v.Verify(auth.FromRequest(r))
			if err != nil {
				writeError(w, http.StatusUnauthorized, wire.CodeUnauthorized, err.Error())
				return
			}
			if role != "" && !p.HasRole(role) {
				writeError(w, http.StatusForbidden, wire.CodeForbidden, "the "+role+" role is required")
				return
			}
			next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
		})
	}
}

func principal(r *http.Request) auth.Principal {
	p, _ := auth.PrincipalFrom(r.Context())
	return p
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code wire.Code, msg string) {
	writeJSON(w, status, wire.Error{Code: code, Message: msg})
}

// readJSON decodes a bounded JSON body into v, refusing unknown fields.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, wire.CodeTooLarge, "body too large")
			return false
		}
		if errors.Is(err, io.EOF) {
			err = errors.New("empty body")
		}
		writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}
