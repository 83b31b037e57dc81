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

// kafkaRecords reads the raw values of every record of topic, waiting up
// to d for at least want records.
func kafkaRecords(t testing.TB, env *testenv.Env, topic string, d time.Duration, want int) [][]byte {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	client, err := sarama.NewClient(env.Kafka.Addrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	deadline := time.Now().Add(d)
	for {
		out := readAll(t, client, topic)
		if len(out) >= want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kafkaMessages reads every record of topic with sarama, waiting up to d
// for at least want records.
func kafkaMessages(t testing.TB, env *testenv.Env, topic string, d time.Duration, want int) []wire.MessageNew {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	client, err := sarama.NewClient(env.Kafka.Addrs(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	deadline := time.Now().Add(d)
	for {
		out := readAll(t, client, topic)
		if len(out) >= want || time.Now().After(deadline) {
			msgs := make([]wire.MessageNew, 0, len(out))
			for _, b := range out {
				var m wire.MessageNew
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatalf("record %q: %v", b, err)
				}
				msgs = append(msgs, m)
			}
			return msgs
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readAll(t testing.TB, client sarama.Client, topic string) [][]byte {
	t.Helper()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
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
		for {
			m := <-pc.Messages()
			out = append(out, m.Value)
			if m.Offset >= hw-1 {
				break
			}
		}
		pc.Close()
	}
	return out
}

func kafkaDecode(t testing.TB, b []byte) wire.MessageNew {
	t.Helper()
	var m wire.MessageNew
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("record %q: %v", b, err)
	}
	return m
}
