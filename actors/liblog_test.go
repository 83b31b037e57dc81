package actors

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestLibHandlerDemotesDeadLetters(t *testing.T) {
	cases := []struct {
		name  string
		level slog.Level
		want  []string // "level msg" of each line written, in order
	}{
		{"info", slog.LevelInfo, []string{"INFO actor system started", "ERROR [Supervision]"}},
		{"debug", slog.LevelDebug, []string{"INFO actor system started", "DEBUG [DeadLetter]", "ERROR [Supervision]"}},
		{"error", slog.LevelError, []string{"ERROR [Supervision]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			next := slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: c.level})
			l := slog.New(libHandler{next: next}).With("lib", "protoactor")
			l.Info("actor system started")
			l.Info(deadLetterMsg, "pid", "$x8")
			l.Error("[Supervision]")
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if line == "" {
					continue
				}
				var rec struct{ Level, Msg, Lib string }
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("line %q: %v", line, err)
				}
				if rec.Lib != "protoactor" {
					t.Errorf("line %q lost its attributes", line)
				}
				got = append(got, rec.Level+" "+rec.Msg)
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("lines %q, want %q", got, c.want)
			}
		})
	}
}
