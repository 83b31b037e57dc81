package admin

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/caasd/caasd/internal/auth"
	"github.com/caasd/caasd/internal/wire"
)

// HistoryReader pages a conversation's messages for a user.
type HistoryReader interface {
	History(ctx context.Context, p auth.Principal, req wire.HistoryGet) (*wire.HistoryPage, error)
}

// Messages serves GET /v1/conversations/{id}/messages for the caller's own
// token: the same pages, membership and tenant checks as history:get.
type Messages struct {
	Engine   HistoryReader
	Verifier *auth.Verifier
	Logger   *slog.Logger
}

// Register adds the messages API to mux.
func (h *Messages) Register(mux *http.ServeMux) {
	mux.Handle("GET /v1/conversations/{id}/messages", RequireRole(h.Verifier, "")(http.HandlerFunc(h.list)))
}

func (h *Messages) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := wire.HistoryGet{ConversationID: r.PathValue("id")}
	if v := q.Get("before_seq"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, "before_seq must be a non-negative integer")
			return
		}
		req.BeforeSeq = n
	}
	if v := q.Get("after_seq"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, "after_seq must be a non-negative integer")
			return
		}
		req.AfterSeq = &n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > wire.MaxHistoryLimit {
			writeError(w, http.StatusBadRequest, wire.CodeInvalidMessage, "limit must be 1–100")
			return
		}
		req.Limit = n
	}
	page, err := h.Engine.History(r.Context(), principal(r), req)
	if err != nil {
		(&Rooms{Logger: h.Logger}).fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}
