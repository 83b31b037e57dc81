package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/persistence"
)

// RoomAdmin is what the rooms API asks of the actor engine.
type RoomAdmin interface {
	Moderate(ctx context.Context, p auth.Principal, req wire.Moderate) ([]byte, error)
	RoomInfo(ctx context.Context, tenant, conv string) ([]byte, error)
	ActiveRoomsOf(ctx context.Context, tenant string, limit int) ([][]byte, error)
}

// ModerationLog lists the audit trail.
type ModerationLog interface {
	History(ctx context.Context, tenant, conv string, before time.Time, limit int, ascending bool) ([]persistence.ModerationAction, error)
}

// TenantCheck tells whether a conversation exists in another tenant.
type TenantCheck interface {
	Get(ctx context.Context, tenant, id string) (*persistence.Conversation, error)
	ExistsElsewhere(ctx context.Context, tenant, id string) (bool, error)
}

// Rooms serves the room moderation and read API (admin role, own tenant).
type Rooms struct {
	Engine   RoomAdmin
	Log      ModerationLog
	Convs    TenantCheck
	Verifier *auth.Verifier
	Logger   *slog.Logger
}

// Register adds the rooms API to mux.
func (h *Rooms) Register(mux *http.ServeMux) {
	admin := RequireRole(h.Verifier, auth.RoleAdmin)
	mux.Handle("POST /v1/admin/conversations/{id}/moderation", admin(http.HandlerFunc(h.moderate)))
	mux.Handle("GET /v1/admin/conversations/{id}/moderation", admin(http.HandlerFunc(h.history)))
	mux.Handle("GET /v1/admin/rooms", admin(http.HandlerFunc(h.list)))
	mux.Handle("GET /v1/admin/rooms/{id}", admin(http.HandlerFunc(h.get)))
}

func (h *Rooms) moderate(w http.ResponseWriter, r *http.Request) {
	var req wire.Moderate
	if !readJSON(w, r, &req) {
		return
	}
	req.ConversationID = r.PathValue("id")
	b, err := h.Engine.Moderate(r.Context(), principal(r), req)
	if err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (h *Rooms) history(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r, 50, 200)
	if !ok {
		return
	}
	tenant, conv := principal(r).TenantID, r.PathValue("id")
	if _, err := h.Convs.Get(r.Context(), tenant, conv); errors.Is(err, persistence.ErrNotFound) {
		if other, _ := h.Convs.ExistsElsewhere(r.Context(), tenant, conv); other {
			writeError(w, http.StatusForbidden, wire.CodeForbidden, "conversation belongs to another tenant")
			return
		}
		writeError(w, http.StatusNotFound, wire.CodeNotFound, "conversation not found")
		return
	} else if err != nil {
		h.fail(w, err)
		return
	}
	var before time.Time
	if v := r.URL.Query().Get("before"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, "before must be an RFC 3339 time (the next_before of the previous page)")
			return
		}
		before = t
	}
	actions, err := h.Log.History(r.Context(), tenant, conv, before, limit, false)
	if err != nil {
		h.fail(w, err)
		return
	}
	if actions == nil {
		actions = []persistence.ModerationAction{}
	}
	next := ""
	if len(actions) == limit {
		next = actions[len(actions)-1].At.Format(time.RFC3339Nano)
	}
	writeJSON(w, http.StatusOK, map[string]any{"actions": actions, "next_before": next})
}

func (h *Rooms) list(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r, 100, 1000)
	if !ok {
		return
	}
	rooms, err := h.Engine.ActiveRoomsOf(r.Context(), principal(r).TenantID, limit)
	if err != nil {
		h.fail(w, err)
		return
	}
	out := make([]json.RawMessage, len(rooms))
	for i, b := range rooms {
		out[i] = b
	}
	writeJSON(w, http.StatusOK, map[string]any{"rooms": out})
}

func (h *Rooms) get(w http.ResponseWriter, r *http.Request) {
	b, err := h.Engine.RoomInfo(r.Context(), principal(r).TenantID, r.PathValue("id"))
	if err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// wireErr is an error that carries a wire error.
type wireErr interface{ WireError() wire.Error }

// statusOf maps a wire code to an HTTP status.
var statusOf = map[wire.Code]int{
	wire.CodeForbidden: http.StatusForbidden, wire.CodeNotMember: http.StatusNotFound, wire.CodeNotFound: http.StatusNotFound,
	wire.CodeInvalidMessage: http.StatusBadRequest, wire.CodeUnavailable: http.StatusServiceUnavailable,
	wire.CodeUnauthorized: http.StatusUnauthorized, wire.CodeBanned: http.StatusForbidden,
}

func (h *Rooms) fail(w http.ResponseWriter, err error) {
	var we wireErr
	if errors.As(err, &we) {
		e := we.WireError()
		status, ok := statusOf[e.Code]
		if !ok {
			status = http.StatusConflict
		}
		writeError(w, status, e.Code, e.Message)
		return
	}
	h.Logger.Error("rooms api", "err", err)
	writeError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, "unavailable")
}

func limitParam(w http.ResponseWriter, r *http.Request, def, max int) (int, bool) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, "limit must be 1–"+strconv.Itoa(max))
		return 0, false
	}
	return n, true
}
