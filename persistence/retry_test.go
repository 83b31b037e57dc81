package persistence

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestRetryGivesUpQuietlyOnceItsAttemptsCannotSucceed checks retry's ends:
// a failing attempt is retried with one warning while both contexts last;
// once the attempts' context ends (the node stops) it returns at once,
// without announcing a retry that will not come.
func TestRetryGivesUpQuietlyOnceItsAttemptsCannotSucceed(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	calls := 0
	err := retry(context.Background(), context.Background(), logger, "insert", func() error {
		if calls++; calls < 3 {
			return errors.New("store away")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("retry = %v after %d calls, want nil after 3", err, calls)
	}
	if n := strings.Count(logs.String(), "persister: retrying"); n != 1 {
		t.Errorf("%d retry warnings, want 1 (the first):\n%s", n, logs.String())
	}

	logs.Reset()
	ctx, cancel := context.WithCancel(context.Background())
	calls = 0
	err = retry(ctx, context.Background(), logger, "insert", func() error {
		calls++
		cancel() // the node stops while the attempt runs
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("retry = %v after %d calls, want context.Canceled after 1", err, calls)
	}
	if logs.Len() != 0 {
		t.Errorf("retry logged at shutdown:\n%s", logs.String())
	}

	stop, end := context.WithCancel(context.Background())
	end() // the session ended: the failed attempt is not tried again
	calls = 0
	err = retry(context.Background(), stop, logger, "insert", func() error { calls++; return errors.New("store away") })
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("retry = %v after %d calls, want context.Canceled after 1", err, calls)
	}
}
