package server_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/caasd/caasd/internal/testenv"
	"github.com/caasd/caasd/server"
	"github.com/caasd/caasd/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(testenv.RemovingBuild(m),
		// Process-wide goroutines started by libraries on first use.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/FerretDB/FerretDB/internal/util/state.(*Provider).Subscribe.func1"),
		goleak.IgnoreAnyFunction("modernc.org/sqlite.newConn.func1"),
		// protoactor's dead-letter log throttle: one goroutine that ends one
		// throttle period (1 s) after a message reached a stopped actor.
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
	)
}

// node starts caasd on env with extra variables; it is drained at cleanup.
func node(t testing.TB, env *testenv.Env, vars map[string]string) *server.Server {
	t.Helper()
	return nodeWithLogger(t, env, vars, testenv.Logger(t, slog.LevelWarn))
}

// nodeWithLogger is node logging to logger.
func nodeWithLogger(t testing.TB, env *testenv.Env, vars map[string]string, logger *slog.Logger) *server.Server {
	t.Helper()
	cfg := env.Config(t, vars)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := server.Start(ctx, cfg, logger)
	if err != nil {
		t.Fatalf("start caasd: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s.Close(ctx, transport.CloseGoingAway)
	})
	return s
}

type participant struct {
	UserID string `json:"user_id"`
	Role   string `json:"role"`
}

// conversation creates a conversation through the admin API.
func conversation(t testing.TB, s *server.Server, tenant, id string, members ...string) {
	t.Helper()
	ps := make([]participant, len(members))
	for i, m := range members {
		ps[i] = participant{UserID: m, Role: "member"}
		if i == 0 {
			ps[i].Role = "owner"
		}
	}
	testenv.MustHTTP(t, 201, "POST", "http://"+s.Addr()+"/v1/admin/conversations",
		testenv.Token(t, "admin-"+tenant, tenant, "admin"),
		map[string]any{"conversation_id": id, "name": id, "participants": ps})
}

// join connects user and joins conv, waiting for room:joined.
func join(t testing.TB, s *server.Server, tenant, user, conv string) *testenv.Client {
	t.Helper()
	c := testenv.Dial(t, s.Addr(), testenv.Token(t, user, tenant), "")
	c.Emit("joinRoom", map[string]any{"conversation_id": conv})
	c.Wait("room:joined", 10*time.Second, nil)
	return c
}

func text(id, conv, body string) map[string]any {
	return map[string]any{"message_id": id, "conversation_id": conv, "content": map[string]any{"type": "text", "text": body}}
}

func byID(id string) func(testenv.Event) bool {
	return func(e testenv.Event) bool { return e.Field("message_id") == id }
}
