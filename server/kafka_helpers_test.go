package server_test

import (
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/caasd/caasd/internal/testenv"
	"github.com/caasd/caasd/internal/wire"
)

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// topicRecords reads every record of topic with sarama, partition by
// partition, up to each partition's high-water mark.
func topicRecords(t testing.TB, env *testenv.Env, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	client, err := sarama.NewClient(env.Kafka.Addrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		hw, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if hw == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		for m := range pc.Messages() {
			out = append(out, m)
			if m.Offset >= hw-1 {
				break
			}
		}
		pc.Close()
	}
	return out
}

// waitTopic reads topic until enough(records) holds or d passes, and
// returns the last read.
func waitTopic(t testing.TB, env *testenv.Env, topic string, d time.Duration, enough func([]*sarama.ConsumerMessage) bool) []*sarama.ConsumerMessage {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		recs := topicRecords(t, env, topic)
		if enough(recs) || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kafkaRecords returns the values of topic's records, waiting up to d for
// at least want of them.
func kafkaRecords(t testing.TB, env *testenv.Env, topic string, d time.Duration, want int) [][]byte {
	t.Helper()
	recs := waitTopic(t, env, topic, d, func(r []*sarama.ConsumerMessage) bool { return len(r) >= want })
	out := make([][]byte, len(recs))
	for i, r := range recs {
		out[i] = r.Value
	}
	return out
}

// kafkaMessages is kafkaRecords of chat messages, decoded.
func kafkaMessages(t testing.TB, env *testenv.Env, topic string, d time.Duration, want int) []wire.MessageNew {
	t.Helper()
	var msgs []wire.MessageNew
	for _, b := range kafkaRecords(t, env, topic, d, want) {
		msgs = append(msgs, kafkaDecode(t, b))
	}
	return msgs
}

func kafkaDecode(t testing.TB, b []byte) wire.MessageNew {
	t.Helper()
	var m wire.MessageNew
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("record %q: %v", b, err)
	}
	return m
}
