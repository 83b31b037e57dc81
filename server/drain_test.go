package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caasd/caasd/internal/testenv"
	"github.com/caasd/caasd/internal/wire"
	"github.com/caasd/caasd/persistence"
	"github.com/caasd/caasd/transport"
)

// TestStoppingNodeGivesNoSeqItCannotPublish: clients that go on sending
// while their node stops get each message either accepted or refused as
// unavailable, and no room is activated again on the stopping node: every
// seq the rooms handed out is in Kafka, with none missing between them
// (the Redis counter equals the highest seq Kafka holds), and the node
// logs no message it could not publish.
func TestStoppingNodeGivesNoSeqItCannotPublish(t *testing.T) {
	env := testenv.Start(t)
	logs := &testenv.SyncBuffer{}
	s := nodeWithLogger(t, env, map[string]string{
		"RATE_LIMIT_PER_MINUTE": "1000000", "RATE_LIMIT_PER_HOUR": "1000000", "SPAM_REPEAT_COUNT": "1000000",
	}, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	const convs, senders = 24, 4
	users := make([]string, senders)
	for i := range users {
		users[i] = fmt.Sprint("u", i)
	}
	for i := range convs {
		conversation(t, s, "acme", fmt.Sprint("drain-", i), users...)
	}
	clients := make([]*testenv.Client, senders)
	for i, u := range users {
		clients[i] = join(t, s, "acme", u, "drain-0")
	}

	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			for n := 0; ; n++ {
				if closed, _ := c.Closed(); closed || n == 200000 {
					return
				}
				conv := fmt.Sprint("drain-", (n*senders+i)%convs)
				c.Emit("sendMessage", text(fmt.Sprintf("m-%d-%d", i, n), conv, "x"))
				time.Sleep(200 * time.Microsecond)
			}
		})
	}
	time.Sleep(500 * time.Millisecond) // every room busy
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	s.Close(ctx, transport.CloseServiceRestart)
	cancel()
	for _, c := range clients {
		if _, ok := c.WaitClosed(10 * time.Second); !ok {
			t.Fatal("a client was not closed by the stopping node")
		}
	}
	wg.Wait()

	accepted, refused := 0, 0
	for _, c := range clients {
		accepted += c.Count("message:accepted")
		for _, e := range c.All("message:failed") {
			if code := e.Field("code"); code != string(wire.CodeUnavailable) {
				t.Errorf("message:failed %s, want code %s", e.Data, wire.CodeUnavailable)
			}
			refused++
		}
	}
	if accepted == 0 {
		t.Fatal("no message accepted before the stop")
	}

	high := map[string]int64{}
	recs := topicRecords(t, env, "chat.messages")
	for _, r := range recs {
		m := kafkaDecode(t, r.Value)
		high[m.ConversationID] = max(high[m.ConversationID], m.Seq)
	}
	rdb := testenv.RedisClient(t, env.RedisURL)
	for i := range convs {
		conv := fmt.Sprint("drain-", i)
		counter, err := rdb.Get(context.Background(), persistence.SeqKey("acme", conv)).Int64()
		if err != nil {
			t.Fatalf("%s: seq counter: %v", conv, err)
		}
		if counter != high[conv] {
			t.Errorf("%s: seqs handed out up to %d, Kafka has up to %d", conv, counter, high[conv])
		}
	}
	for _, msg := range []string{"message not accepted by Kafka", "seq assignment failed"} {
		if n := strings.Count(logs.String(), msg); n > 0 {
			t.Errorf("%d log lines %q", n, msg)
		}
	}
	t.Logf("%d accepted, %d refused as unavailable, %d in Kafka", accepted, refused, len(recs))
}
