package persistence_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/caasd/caasd/internal/embedded"
	"github.com/caasd/caasd/persistence"
)

type nopProducerMetrics struct{}

func (nopProducerMetrics) Published(string, time.Duration) {}
func (nopProducerMetrics) PublishError(string)             {}

// TestProducerLingerJoinsRecordsInOneRequest: on a real Kafka-protocol
// broker (kfake), counting the produce requests it gets, records sent
// together wait out the linger and go in one request, and with no linger
// each record sent on its own goes at once, in a request of its own.
func TestProducerLingerJoinsRecordsInOneRequest(t *testing.T) {
	cases := []struct {
		name    string
		linger  time.Duration
		records int
		gap     time.Duration // between two sends
		// minRequests and maxRequests bound the produce requests (a
		// retried request counts twice); firstAfter is the least time
		// from the first send to its acknowledgement.
		maxRequests, minRequests int
		firstAfter               time.Duration
	}{
		{name: "lingered", linger: 300 * time.Millisecond, records: 20, maxRequests: 2, minRequests: 1, firstAfter: 250 * time.Millisecond},
		{name: "none", linger: 0, records: 5, gap: 100 * time.Millisecond, maxRequests: 10, minRequests: 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, err := embedded.StartKafka("", 0, 1, false, "lin")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(k.Close)
			var requests atomic.Int32
			k.Cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				for _, topic := range req.(*kmsg.ProduceRequest).Topics {
					if topic.Topic == "lin" {
						requests.Add(1)
					}
				}
				return nil, nil, false // observed; the broker handles it
			})
			p, err := persistence.NewProducer(persistence.KafkaConfig{Brokers: k.Addrs(), ClientID: "test", Linger: tc.linger}, slog.New(slog.DiscardHandler), nopProducerMetrics{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Close(context.Background()) })

			acked := make(chan time.Duration, tc.records)
			for i := range tc.records {
				if i > 0 {
					time.Sleep(tc.gap)
				}
				sent := time.Now()
				err := p.Send(&persistence.Record{Topic: "lin", Key: "room", Value: []byte(`{"n":1}`), Done: func(err error) {
					if err != nil {
						t.Errorf("record %d: %v", i, err)
					}
					acked <- time.Since(sent)
				}})
				if err != nil {
					t.Fatal(err)
				}
			}
			for i := range tc.records {
				select {
				case d := <-acked:
					if i == 0 && d < tc.firstAfter {
						t.Errorf("first record acknowledged after %v, before the linger of %v", d, tc.linger)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%d of %d records acknowledged", i, tc.records)
				}
			}
			if n := int(requests.Load()); n < tc.minRequests || n > tc.maxRequests {
				t.Fatalf("%d records in %d produce requests, want %d to %d", tc.records, n, tc.minRequests, tc.maxRequests)
			}
		})
	}
}
