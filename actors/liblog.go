package actors

import (
	"context"
	"log/slog"
)

// deadLetterMsg is what protoactor logs, at INFO, for a message to an
// actor that is gone.
const deadLetterMsg = "[DeadLetter]"

// libHandler passes protoactor's records on, its dead letters at DEBUG: in
// a chat engine a message to a stopped actor is routine (a connection
// closes while its rooms still fan out to it, a room stops while a reply
// is on its way), and protoactor's INFO lines for them would be noise in
// every shutdown.
type libHandler struct{ next slog.Handler }

// Enabled reports INFO as enabled whenever DEBUG is, so that a dead
// letter reaches Handle to be demoted there.
func (h libHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l) || (l == slog.LevelInfo && h.next.Enabled(ctx, slog.LevelDebug))
}

// Handle demotes dead letters and passes on what the next handler wants.
func (h libHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelInfo && r.Message == deadLetterMsg {
		r.Level = slog.LevelDebug
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs keeps the demotion on the derived handler.
func (h libHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return libHandler{next: h.next.WithAttrs(as)}
}

// WithGroup keeps the demotion on the derived handler.
func (h libHandler) WithGroup(name string) slog.Handler {
	return libHandler{next: h.next.WithGroup(name)}
}
