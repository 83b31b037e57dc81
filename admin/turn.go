package admin

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/turn"
)

// TURNRegistry is what the TURN API needs (turn.Registry).
type TURNRegistry interface {
	ICEServers(userID string) turn.ICEServers
	List() []turn.ServerStatus
	Add(c turn.ServerConfig) error
	Update(c turn.ServerConfig) error
	Remove(id string) error
}

// TURN serves GET /v1/webrtc/ice-servers (any authenticated user) and
// /v1/admin/turn/servers (admin role). No answer ever carries a server's
// secret: servers are listed as turn.ServerStatus, which has none.
type TURN struct {
	Registry TURNRegistry
	Verifier *auth.Verifier
	Logger   *slog.Logger
}

// Register adds the ICE servers endpoint and the TURN servers API to mux.
func (h *TURN) Register(mux *http.ServeMux) {
	user := RequireRole(h.Verifier, "")
	admin := RequireRole(h.Verifier, auth.RoleAdmin)
	mux.Handle("GET /v1/webrtc/ice-servers", user(http.HandlerFunc(h.iceServers)))
	mux.Handle("GET /v1/admin/turn/servers", admin(http.HandlerFunc(h.list)))
	mux.Handle("POST /v1/admin/turn/servers", admin(http.HandlerFunc(h.add)))
	mux.Handle("PUT /v1/admin/turn/servers/{id}", admin(http.HandlerFunc(h.update)))
	mux.Handle("DELETE /v1/admin/turn/servers/{id}", admin(http.HandlerFunc(h.remove)))
}

// iceServers returns the healthy servers, STUN entries first, with TURN
// credentials minted for the caller.
func (h *TURN) iceServers(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, h.Registry.ICEServers(principal(r).UserID))
}

func (h *TURN) list(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"servers": h.Registry.List()})
}

// turnServerRequest is the body of POST and PUT: a server configuration
// with its secret, which is never returned.
type turnServerRequest struct {
	ID             string           `json:"id"`
	Host           string           `json:"host"`
	Port           int              `json:"port"`
	TLSPort        int              `json:"tls_port"`
	Realm          string           `json:"realm"`
	Secret         string           `json:"secret"`
	PreviousSecret string           `json:"previous_secret"`
	Transports     []turn.Transport `json:"transports"`
}

func (q turnServerRequest) config() turn.ServerConfig {
	if q.Port == 0 {
		q.Port = turn.DefaultPort
	}
	return turn.ServerConfig{
		ID: q.ID, Host: q.Host, Port: q.Port, TLSPort: q.TLSPort, Realm: q.Realm,
		Secret: turn.Secret(q.Secret), PreviousSecret: turn.Secret(q.PreviousSecret), Transports: q.Transports,
	}
}

func (h *TURN) add(w http.ResponseWriter, r *http.Request) {
	var req turnServerRequest
	if !readJSON(w, r, &req) {
		return
	}
	if err := h.Registry.Add(req.config()); err != nil {
		h.fail(w, err)
		return
	}
	h.audit(r, "turn server added", req.ID)
	h.writeServer(w, http.StatusCreated, req.ID)
}

func (h *TURN) update(w http.ResponseWriter, r *http.Request) {
	var req turnServerRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.ID == "" {
		req.ID = r.PathValue("id")
	}
	if req.ID != r.PathValue("id") {
		writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, "id in the body differs from the path")
		return
	}
	if err := h.Registry.Update(req.config()); err != nil {
		h.fail(w, err)
		return
	}
	h.audit(r, "turn server updated", req.ID)
	h.writeServer(w, http.StatusOK, req.ID)
}

func (h *TURN) remove(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := h.Registry.Remove(id); err != nil {
		h.fail(w, err)
		return
	}
	h.audit(r, "turn server removed", id)
	w.WriteHeader(http.StatusNoContent)
}

// writeServer answers with the status of server id.
func (h *TURN) writeServer(w http.ResponseWriter, code int, id string) {
	for _, s := range h.Registry.List() {
		if s.ID == id {
			writeJSON(w, code, s)
			return
		}
	}
	writeError(w, http.StatusNotFound, wire.CodeNotFound, "turn server not found")
}

func (h *TURN) audit(r *http.Request, what, id string) {
	p := principal(r)
	h.Logger.Info(what, "server", id, "by", p.UserID, "tenant", p.TenantID)
}

// fail maps registry errors to HTTP answers. Registry errors never carry
// a secret (turn.FieldError names the field only).
func (h *TURN) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, turn.ErrNotFound):
		writeError(w, http.StatusNotFound, wire.CodeNotFound, "turn server not found")
	case errors.Is(err, turn.ErrExists):
		writeError(w, http.StatusConflict, wire.CodeInvalidMessage, "a turn server with this id exists")
	case errors.Is(err, turn.ErrTooManyServers):
		writeError(w, http.StatusConflict, wire.CodeInvalidMessage, "too many turn servers")
	case errors.Is(err, turn.ErrInvalidConfig):
		writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, err.Error())
	default:
		h.Logger.Error("turn api", "err", err)
		writeError(w, http.StatusInternalServerError, wire.CodeInternal, "internal error")
	}
}
