package persistence_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/caasd/caasd/internal/embedded"
	"github.com/caasd/caasd/persistence"
)

// TestWaitPersistedWaitsForTheGroupsCommits: on a real Kafka-protocol
// broker (kfake), WaitPersisted returns at once for a topic with nothing
// in it, waits while the group has not committed a partition's end, gives
// up with its context, and returns once the group (which did not exist
// when it was called) committed the ends the partitions had.
func TestWaitPersistedWaitsForTheGroupsCommits(t *testing.T) {
	k, err := embedded.StartKafka("", 0, 2, false, "msgs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	cfg := persistence.KafkaConfig{Brokers: k.Addrs(), ClientID: "test"}
	ctx := context.Background()
	if err := persistence.WaitPersisted(ctx, cfg, "grp", "msgs"); err != nil {
		t.Fatalf("empty topic: %v", err)
	}

	sc := sarama.NewConfig()
	sc.Producer.Return.Successes = true
	sc.Producer.Partitioner = sarama.NewManualPartitioner
	prod, err := sarama.NewSyncProducer(k.Addrs(), sc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for _, p := range []int32{0, 1, 1} {
		if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: "msgs", Partition: p, Value: sarama.StringEncoder("m")}); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err = persistence.WaitPersisted(short, cfg, "grp", "msgs")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("nothing committed: %v, want the context's deadline", err)
	}

	done := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		done <- persistence.WaitPersisted(wctx, cfg, "grp", "msgs")
	}()
	select {
	case err := <-done:
		t.Fatalf("returned %v before the group committed anything", err)
	case <-time.After(500 * time.Millisecond):
	}
	// The group consumes and commits every message, as the persister does
	// once MongoDB has them.
	gc := sarama.NewConfig()
	gc.Consumer.Offsets.Initial = sarama.OffsetOldest
	gc.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	group, err := sarama.NewConsumerGroup(k.Addrs(), "grp", gc)
	if err != nil {
		t.Fatal(err)
	}
	gctx, stop := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		_ = group.Consume(gctx, []string{"msgs"}, markAll{})
	}()
	defer func() { stop(); <-consumed; _ = group.Close() }()
	if err := <-done; err != nil {
		t.Fatalf("after both partitions were committed: %v", err)
	}
}

// markAll is a consumer group handler that marks every message consumed.
type markAll struct{}

func (markAll) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (markAll) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (markAll) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		sess.MarkMessage(m, "")
	}
	return nil
}
