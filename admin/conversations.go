package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/persistence"
)

// ConversationStore is what the conversations API needs.
type ConversationStore interface {
	Get(ctx context.Context, tenant, id string) (*persistence.Conversation, error)
	List(ctx context.Context, tenant, after string, limit int) ([]persistence.Conversation, error)
	Create(ctx context.Context, c *persistence.Conversation) error
	Update(ctx context.Context, tenant, id string, patch persistence.ConversationPatch) (*persistence.Conversation, error)
	Delete(ctx context.Context, tenant, id string) error
	AddParticipant(ctx context.Context, tenant, id string, p persistence.Participant) (*persistence.Conversation, error)
	RemoveParticipant(ctx context.Context, tenant, id, userID string) (*persistence.Conversation, error)
}

// RoomNotifier tells live rooms that their conversation changed.
type RoomNotifier interface {
	InvalidateRoom(tenant, conv string)
}

// Conversations serves /v1/admin/conversations (admin role, own tenant).
type Conversations struct {
	Store    ConversationStore
	Rooms    RoomNotifier
	Verifier *auth.Verifier
	Logger   *slog.Logger
}

// Roles a participant may have.
var participantRoles = map[string]bool{"owner": true, "admin": true, "moderator": true, "member": true}

// Register adds the conversations API to mux.
func (h *Conversations) Register(mux *http.ServeMux) {
	admin := RequireRole(h.Verifier, auth.RoleAdmin)
	mux.Handle("POST /v1/admin/conversations", admin(http.HandlerFunc(h.create)))
	mux.Handle("GET /v1/admin/conversations", admin(http.HandlerFunc(h.list)))
	mux.Handle("GET /v1/admin/conversations/{id}", admin(http.HandlerFunc(h.get)))
	mux.Handle("PATCH /v1/admin/conversations/{id}", admin(http.HandlerFunc(h.patch)))
	mux.Handle("DELETE /v1/admin/conversations/{id}", admin(http.HandlerFunc(h.delete)))
	mux.Handle("POST /v1/admin/conversations/{id}/participants", admin(http.HandlerFunc(h.addParticipant)))
	mux.Handle("DELETE /v1/admin/conversations/{id}/participants/{user_id}", admin(http.HandlerFunc(h.removeParticipant)))
}

type createRequest struct {
	ConversationID string                    `json:"conversation_id"`
	Name           string                    `json:"name"`
	Participants   []persistence.Participant `json:"participants"`
	Metadata       map[string]string         `json:"metadata"`
}

const maxParticipants = 100000

func validParticipants(ps []persistence.Participant) string {
	if len(ps) > maxParticipants {
		return "too many participants"
	}
	seen := make(map[string]bool, len(ps))
	for _, p := range ps {
		if !wire.ValidID(p.UserID) {
			return "participant user_id must be 1–128 printable characters"
		}
		if !participantRoles[p.Role] {
			return "participant role must be owner, admin, moderator or member"
		}
		if seen[p.UserID] {
			return "participant " + p.UserID + " is listed twice"
		}
		seen[p.UserID] = true
	}
	return ""
}

func (h *Conversations) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if !readJSON(w, r, &req) {
		return
	}
	if !wire.ValidID(req.ConversationID) {
		writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, "conversation_id must be 1–128 printable characters")
		return
	}
	for i := range req.Participants {
		if req.Participants[i].Role == "" {
			req.Participants[i].Role = "member"
		}
	}
	if msg := validParticipants(req.Participants); msg != "" {
		writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, msg)
		return
	}
	if req.Participants == nil {
		req.Participants = []persistence.Participant{}
	}
	c := &persistence.Conversation{
		TenantID: principal(r).TenantID, ConversationID: req.ConversationID, Name: req.Name,
		Participants: req.Participants, Metadata: req.Metadata,
	}
	if err := h.Store.Create(r.Context(), c); err != nil {
		h.fail(w, err)
		return
	}
	h.Rooms.InvalidateRoom(c.TenantID, c.ConversationID)
	writeJSON(w, http.StatusCreated, c)
}

func (h *Conversations) list(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r, 50, 200)
	if !ok {
		return
	}
	out, err := h.Store.List(r.Context(), principal(r).TenantID, r.URL.Query().Get("after"), limit)
	if err != nil {
		h.fail(w, err)
		return
	}
	if out == nil {
		out = []persistence.Conversation{}
	}
	next := ""
	if len(out) == limit {
		next = out[len(out)-1].ConversationID
	}
	writeJSON(w, http.StatusOK, map[string]any{"conversations": out, "next_after": next})
}

func (h *Conversations) get(w http.ResponseWriter, r *http.Request) {
	c, err := h.Store.Get(r.Context(), principal(r).TenantID, r.PathValue("id"))
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (h *Conversations) patch(w http.ResponseWriter, r *http.Request) {
	var p persistence.ConversationPatch
	if !readJSON(w, r, &p) {
		return
	}
	tenant, id := principal(r).TenantID, r.PathValue("id")
	c, err := h.Store.Update(r.Context(), tenant, id, p)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (h *Conversations) delete(w http.ResponseWriter, r *http.Request) {
	tenant, id := principal(r).TenantID, r.PathValue("id")
	if err := h.Store.Delete(r.Context(), tenant, id); err != nil {
		h.fail(w, err)
		return
	}
	h.Rooms.InvalidateRoom(tenant, id)
	w.WriteHeader(http.StatusNoContent)
}

func (h *Conversations) addParticipant(w http.ResponseWriter, r *http.Request) {
	var p persistence.Participant
	if !readJSON(w, r, &p) {
		return
	}
	if p.Role == "" {
		p.Role = "member"
	}
	if msg := validParticipants([]persistence.Participant{p}); msg != "" {
		writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, msg)
		return
	}
	tenant, id := principal(r).TenantID, r.PathValue("id")
	c, err := h.Store.AddParticipant(r.Context(), tenant, id, p)
	if err != nil {
		h.fail(w, err)
		return
	}
	h.Rooms.InvalidateRoom(tenant, id)
	writeJSON(w, http.StatusOK, c)
}

func (h *Conversations) removeParticipant(w http.ResponseWriter, r *http.Request) {
	tenant, id := principal(r).TenantID, r.PathValue("id")
	c, err := h.Store.RemoveParticipant(r.Context(), tenant, id, r.PathValue("user_id"))
	if err != nil {
		h.fail(w, err)
		return
	}
	h.Rooms.InvalidateRoom(tenant, id)
	writeJSON(w, http.StatusOK, c)
}

// fail maps store errors to HTTP answers; another tenant's conversation is
// simply not found, so nothing about it leaks.
func (h *Conversations) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		writeError(w, http.StatusNotFound, wire.CodeNotFound, "conversation not found")
	case errors.Is(err, persistence.ErrConflict):
		writeError(w, http.StatusConflict, wire.CodeInvalidMessage, "conversation already exists")
	default:
		h.Logger.Error("conversations api", "err", err)
		writeError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, "storage unavailable")
	}
}
