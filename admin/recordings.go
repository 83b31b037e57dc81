package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/persistence"
)

// RecordingStore is what the recordings API needs (persistence.Recordings).
type RecordingStore interface {
	List(ctx context.Context, tenant string, f persistence.RecordingFilter, cursor string, limit int) ([]persistence.Recording, string, error)
	Get(ctx context.Context, tenant, id string) (*persistence.Recording, error)
	Stats(ctx context.Context, tenant string, from, to time.Time) (*persistence.RecordingStats, error)
	Delete(ctx context.Context, tenant, id, by string) error
	AddQuality(ctx context.Context, tenant, id string, q persistence.QualitySample, by string) (*persistence.Recording, error)
	SetStorage(ctx context.Context, tenant, id string, st persistence.RecordingStorage, by string) (*persistence.Recording, error)
}

// Recordings serves /v1/admin/recordings (admin role, own tenant only):
// list with filters and cursor paging, get, GDPR delete, statistics, and
// the quality and storage information of a recording.
type Recordings struct {
	Store    RecordingStore
	Verifier *auth.Verifier
	Logger   *slog.Logger
}

// Bounds of the recordings API.
const (
	defaultRecordingPage = 50
	maxRecordingPage     = 200
	deleteTimeout        = 15 * time.Second
	maxLocationLen       = 2048
	maxChecksumLen       = 256
)

// recordingStatuses are the statuses a list may filter on.
var recordingStatuses = map[string]bool{
	persistence.RecordingRequested: true, persistence.RecordingActive: true, persistence.RecordingStopped: true,
	persistence.RecordingRejected: true, persistence.RecordingDeleted: true,
}

// Register adds the recordings API to mux.
func (h *Recordings) Register(mux *http.ServeMux) {
	admin := RequireRole(h.Verifier, auth.RoleAdmin)
	mux.Handle("GET /v1/admin/recordings", admin(http.HandlerFunc(h.list)))
	mux.Handle("GET /v1/admin/recordings/stats", admin(http.HandlerFunc(h.stats)))
	mux.Handle("GET /v1/admin/recordings/{id}", admin(http.HandlerFunc(h.get)))
	mux.Handle("DELETE /v1/admin/recordings/{id}", admin(http.HandlerFunc(h.delete)))
	mux.Handle("POST /v1/admin/recordings/{id}/quality", admin(http.HandlerFunc(h.quality)))
	mux.Handle("PUT /v1/admin/recordings/{id}/storage", admin(http.HandlerFunc(h.storage)))
}

// timeRange reads the from and to query parameters (RFC 3339).
func timeRange(r *http.Request) (from, to time.Time, msg string) {
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		v := r.URL.Query().Get(p.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return from, to, p.name + " must be an RFC 3339 time, e.g. 2026-11-26T00:00:00Z"
		}
		*p.dst = t
	}
	return from, to, ""
}

func (h *Recordings) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultRecordingPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxRecordingPage {
			writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, "limit must be 1–200")
			return
		}
		limit = n
	}
	from, to, msg := timeRange(r)
	if msg == "" && q.Get("status") != "" && !recordingStatuses[q.Get("status")] {
		msg = "status must be requested, recording, stopped, rejected or deleted"
	}
	if msg != "" {
		writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, msg)
		return
	}
	f := persistence.RecordingFilter{
		ConversationID: q.Get("conversation_id"), CallID: q.Get("call_id"), Status: q.Get("status"),
		Participant: q.Get("participant"), From: from, To: to,
	}
	out, next, err := h.Store.List(r.Context(), principal(r).TenantID, f, q.Get("cursor"), limit)
	if err != nil {
		h.fail(w, err)
		return
	}
	if out == nil {
		out = []persistence.Recording{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"recordings": out, "next_cursor": next})
}

func (h *Recordings) stats(w http.ResponseWriter, r *http.Request) {
	from, to, msg := timeRange(r)
	if msg != "" {
		writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, msg)
		return
	}
	st, err := h.Store.Stats(r.Context(), principal(r).TenantID, from, to)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *Recordings) get(w http.ResponseWriter, r *http.Request) {
	rec, err := h.Store.Get(r.Context(), principal(r).TenantID, r.PathValue("id"))
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// delete erases a recording for GDPR: an audit stub stays, a deletion
// event tells storage to remove the file, and the recording is gone.
func (h *Recordings) delete(w http.ResponseWriter, r *http.Request) {
	p, id := principal(r), r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), deleteTimeout)
	defer cancel()
	if err := h.Store.Delete(ctx, p.TenantID, id, p.UserID); err != nil {
		h.fail(w, err)
		return
	}
	h.Logger.Info("recording deleted", "recording_id", id, "tenant", p.TenantID, "by", p.UserID)
	w.WriteHeader(http.StatusNoContent)
}

func (h *Recordings) quality(w http.ResponseWriter, r *http.Request) {
	var req struct {
		BitrateKbps *float64 `json:"bitrate_kbps"`
		PacketLoss  *float64 `json:"packet_loss"`
		JitterMs    *float64 `json:"jitter_ms"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if req.BitrateKbps == nil || req.PacketLoss == nil || req.JitterMs == nil {
		writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, "bitrate_kbps, packet_loss and jitter_ms are required")
		return
	}
	p := principal(r)
	q := persistence.QualitySample{BitrateKbps: *req.BitrateKbps, PacketLoss: *req.PacketLoss, JitterMs: *req.JitterMs}
	rec, err := h.Store.AddQuality(r.Context(), p.TenantID, r.PathValue("id"), q, p.UserID)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

func (h *Recordings) storage(w http.ResponseWriter, r *http.Request) {
	var st persistence.RecordingStorage
	if !readJSON(w, r, &st) {
		return
	}
	switch {
	case st.Location == "" || len(st.Location) > maxLocationLen || !utf8.ValidString(st.Location):
		writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, "location is required: at most 2048 bytes of UTF-8")
		return
	case st.SizeBytes < 0:
		writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, "size_bytes must not be negative")
		return
	case len(st.Checksum) > maxChecksumLen || !utf8.ValidString(st.Checksum):
		writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, "checksum must be at most 256 bytes of UTF-8")
		return
	}
	st.UpdatedAt = nil
	p := principal(r)
	rec, err := h.Store.SetStorage(r.Context(), p.TenantID, r.PathValue("id"), st, p.UserID)
	if err != nil {
		h.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// fail maps store errors to HTTP answers; another tenant's recording is
// simply not found, so nothing about it leaks.
func (h *Recordings) fail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, persistence.ErrNotFound):
		writeError(w, http.StatusNotFound, wire.CodeNotFound, "recording not found")
	case errors.Is(err, persistence.ErrInvalidRecording):
		writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, err.Error())
	case errors.Is(err, persistence.ErrConflict):
		writeError(w, http.StatusConflict, wire.CodeUnavailable, "the recording changed meanwhile; try again")
	default:
		h.Logger.Error("recordings api", "err", err)
		writeError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, "storage unavailable")
	}
}
