package embedded

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// countingHandler counts WithAttrs calls made on it and its derivatives.
type countingHandler struct {
	slog.Handler
	withAttrs *int
}

func (c countingHandler) WithAttrs(a []slog.Attr) slog.Handler {
	*c.withAttrs++
	return countingHandler{c.Handler.WithAttrs(a), c.withAttrs}
}

func (c countingHandler) WithGroup(n string) slog.Handler {
	return countingHandler{c.Handler.WithGroup(n), c.withAttrs}
}

func TestQuietKeepsWarningsWithTheirAttributesAndFormatsNothingElse(t *testing.T) {
	var buf bytes.Buffer
	n := 0
	base := slog.New(countingHandler{slog.NewTextHandler(&buf, nil), &n})
	l := Quiet(base).With("conn", 7)
	for range 100 {
		l.With("request", "insert").Info("handled")
	}
	if buf.Len() != 0 || n != 0 {
		t.Fatalf("info passed or attributes formatted: %q, %d WithAttrs", buf.String(), n)
	}
	l.WithGroup("g").With("b", 2).Warn("slow", "ms", 900)
	out := buf.String()
	for _, want := range []string{"level=WARN", "msg=slow", "conn=7", "g.b=2", "g.ms=900"} {
		if !strings.Contains(out, want) {
			t.Errorf("%q lacks %s", out, want)
		}
	}
	if !Quiet(base).Handler().Enabled(context.Background(), slog.LevelError) || Quiet(base).Handler().Enabled(context.Background(), slog.LevelInfo) {
		t.Error("levels not as documented")
	}
}

// TestQuietDropsTheDisconnectNoise: the driver's endSessions, which
// FerretDB v1 answers CommandNotFound, logged nothing before; another
// failed command still logs its answer.
func TestQuietDropsTheDisconnectNoise(t *testing.T) {
	var buf bytes.Buffer
	l := Quiet(slog.New(slog.NewTextHandler(&buf, nil)))
	l.Warn("Response header: length:   121, id:  181, response_to:  214, opcode: OP_MSG")
	l.Warn("Response message:\n{\"ok\": 0.0, \"errmsg\": \"no such command: 'endSessions'\", \"code\": 59}")
	if buf.Len() != 0 {
		t.Fatalf("logged %q", buf.String())
	}
	l.Warn("Response message:\n{\"ok\": 0.0, \"errmsg\": \"E11000 duplicate key\", \"code\": 11000}")
	if !strings.Contains(buf.String(), "E11000") {
		t.Fatalf("a failed command's answer was dropped: %q", buf.String())
	}
}
