package logthrottle

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/caasd/caasd/internal/testenv"
)

type line struct {
	Level, Msg string
	Suppressed int
	Room       string
}

func lines(t testing.TB, buf *bytes.Buffer) []line {
	t.Helper()
	var out []line
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var x line
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, x)
	}
	buf.Reset()
	return out
}

func emit(t testing.TB, h slog.Handler, at time.Time, level slog.Level, msg string, n int) {
	t.Helper()
	for range n {
		if err := h.Handle(context.Background(), slog.NewRecord(at, level, msg, 0)); err != nil {
			t.Fatal(err)
		}
	}
}

// timers replaces a Handler's timers with a list run by hand.
type timers struct {
	delays []time.Duration
	fs     []func()
}

func (tm *timers) install(h *Handler) {
	h.st.schedule = func(d time.Duration, f func()) { tm.delays, tm.fs = append(tm.delays, d), append(tm.fs, f) }
}

func (tm *timers) fire() {
	for _, f := range tm.fs {
		f()
	}
	tm.delays, tm.fs = nil, nil
}

func TestHandlerPassesABurstOfEachKindAWindow(t *testing.T) {
	var buf bytes.Buffer
	h := New(slog.NewJSONHandler(&buf, nil), time.Second, 5)
	var tm timers
	tm.install(h)
	t0 := time.Date(2026, 11, 28, 5, 0, 0, 0, time.UTC)

	emit(t, h, t0, slog.LevelWarn, "message not accepted by Kafka", 100)
	emit(t, h, t0.Add(500*time.Millisecond), slog.LevelWarn, "message not accepted by Kafka", 100)
	emit(t, h, t0, slog.LevelWarn, "seq assignment failed", 3)
	emit(t, h, t0, slog.LevelError, "message not accepted by Kafka", 2) // another level, another kind
	got := lines(t, &buf)
	count := map[string]int{}
	for _, l := range got {
		count[l.Level+" "+l.Msg]++
		if l.Suppressed != 0 {
			t.Errorf("%+v: a count of dropped records in the first window", l)
		}
	}
	want := map[string]int{"WARN message not accepted by Kafka": 5, "WARN seq assignment failed": 3, "ERROR message not accepted by Kafka": 2}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Fatalf("passed %v, want %v", count, want)
	}
	if len(tm.delays) != 1 || tm.delays[0] != time.Second {
		t.Fatalf("timers %v, want one for the end of the window that dropped, in 1s", tm.delays)
	}

	// The next window passes again, its first record telling what the
	// window before dropped.
	emit(t, h, t0.Add(time.Second), slog.LevelWarn, "message not accepted by Kafka", 7)
	got = lines(t, &buf)
	if len(got) != 5 || got[0].Suppressed != 195 || got[1].Suppressed != 0 {
		t.Fatalf("next window %+v, want 5 lines, the first with suppressed 195", got)
	}
	// The first window's timer finds its count told; the second's writes
	// what the second window dropped, nothing coming after it.
	tm.fire()
	if got = lines(t, &buf); len(got) != 1 || got[0].Suppressed != 2 || got[0].Msg != "message not accepted by Kafka" || got[0].Level != "WARN" {
		t.Fatalf("at the windows' ends %+v, want one WARN line with suppressed 2", got)
	}
	emit(t, h, t0.Add(3*time.Second), slog.LevelWarn, "message not accepted by Kafka", 1)
	if got = lines(t, &buf); len(got) != 1 || got[0].Suppressed != 0 {
		t.Fatalf("a window later %+v, want one line and nothing more to tell", got)
	}
}

func TestDerivedHandlersShareTheCounts(t *testing.T) {
	var buf bytes.Buffer
	h := New(slog.NewJSONHandler(&buf, nil), time.Hour, 3)
	var tm timers
	tm.install(h)
	l := slog.New(h)
	for i := range 10 {
		l.With("room", fmt.Sprint("r", i)).Warn("room activation fenced")
	}
	got := lines(t, &buf)
	if len(got) != 3 || got[2].Room != "r2" {
		t.Fatalf("%+v, want the first 3 of 10, attributes kept", got)
	}
}

func TestHandlerWithoutALimitPassesEverything(t *testing.T) {
	for _, c := range []struct {
		interval time.Duration
		burst    int
	}{{time.Second, 0}, {0, 5}} {
		var buf bytes.Buffer
		emit(t, New(slog.NewJSONHandler(&buf, nil), c.interval, c.burst), time.Now(), slog.LevelWarn, "x", 50)
		if n := len(lines(t, &buf)); n != 50 {
			t.Errorf("interval %v burst %d: %d of 50 passed", c.interval, c.burst, n)
		}
	}
}

func TestKindsTrackedAreBounded(t *testing.T) {
	var buf bytes.Buffer
	h := New(slog.NewJSONHandler(&buf, nil), time.Second, 1)
	var tm timers
	tm.install(h)
	t0 := time.Now()
	for i := range maxKinds + 100 {
		emit(t, h, t0, slog.LevelWarn, fmt.Sprint("kind ", i), 2)
	}
	if n := len(h.st.kinds); n != maxKinds {
		t.Fatalf("%d kinds tracked, want %d", n, maxKinds)
	}
	// Untracked kinds pass (both records); tracked ones pass their burst.
	if n := len(lines(t, &buf)); n != maxKinds+200 {
		t.Fatalf("%d lines, want %d", n, maxKinds+200)
	}
	// Once their windows end, the kinds make room.
	emit(t, h, t0.Add(time.Second), slog.LevelWarn, "a new kind", 2)
	if n := len(lines(t, &buf)); n != 1 {
		t.Fatalf("a new kind after the sweep passed %d of 2, want 1", n)
	}
}

func TestWindowEndWritesWhatItDroppedOnItsOwn(t *testing.T) {
	var out testenv.SyncBuffer // the Handler's timer writes it
	l := slog.New(New(slog.NewJSONHandler(&out, nil), 50*time.Millisecond, 2))
	for range 10 {
		l.Warn("room activation fenced")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := lines(t, bytes.NewBufferString(out.String()))
		if len(got) == 3 {
			if got[2].Suppressed != 8 {
				t.Fatalf("%+v, want the third line to tell 8 suppressed", got)
			}
			return
		}
		if len(got) > 3 || time.Now().After(deadline) {
			t.Fatalf("%+v, want 2 lines and then one telling 8 suppressed", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
