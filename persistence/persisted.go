package persistence

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
)

// persistedPollEvery is how often WaitPersisted reads the group's offsets;
// the persister commits about every second (commitEvery).
const persistedPollEvery = 200 * time.Millisecond

// WaitPersisted waits until the persister group has committed, on every
// partition of topic, the end the partition had when it was called: every
// message published before then is in MongoDB (the persister commits only
// what MongoDB has). A seq restore waits for it, so that the messages a
// node accepted just before Redis lost its data, still in Kafka then, are
// in the stored seqs it reads.
func WaitPersisted(ctx context.Context, cfg KafkaConfig, group, topic string) error {
	client, err := sarama.NewClient(cfg.Brokers, baseSaramaConfig(cfg.ClientID+"-persisted"))
	if err != nil {
		return fmt.Errorf("persisted offsets: %w", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		_ = client.Close()
		return fmt.Errorf("persisted offsets: %w", err)
	}
	defer admin.Close() // closes client too
	parts, err := client.Partitions(topic)
	if err != nil {
		return fmt.Errorf("persisted offsets of %s: %w", topic, err)
	}
	ends := make(map[int32]int64, len(parts))
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("end of %s/%d: %w", topic, p, err)
		}
		if end > 0 {
			ends[p] = end
		}
	}
	for {
		caughtUp, err := committedTo(admin, group, topic, parts, ends)
		if err != nil {
			return err
		}
		if caughtUp {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the persister to store %s: %w", topic, ctx.Err())
		case <-time.After(persistedPollEvery):
		}
	}
}

// committedTo reports whether group has committed at least ends on topic.
func committedTo(admin sarama.ClusterAdmin, group, topic string, parts []int32, ends map[int32]int64) (bool, error) {
	if len(ends) == 0 {
		return true, nil
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if errors.Is(err, sarama.ErrGroupIDNotFound) {
		return false, nil // the persister has not joined yet
	}
	if err != nil {
		return false, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	for p, end := range ends {
		b := resp.GetBlock(topic, p)
		if b == nil || b.Offset < end {
			return false, nil
		}
	}
	return true, nil
}
