// Command kprobe measures caasd's Kafka producer alone: records of many
// keys at a fixed rate through persistence.Producer, and the latency from
// Send to its Done.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caasd/caasd/persistence"
)

type nopMetrics struct{}

func (nopMetrics) Published(string, time.Duration) {}
func (nopMetrics) PublishError(string)             {}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka brokers")
	rate := flag.Int("rate", 5000, "records per second")
	keys := flag.Int("keys", 500, "distinct keys")
	dur := flag.Duration("duration", 10*time.Second, "how long to send")
	flag.Parse()
	p, err := persistence.NewProducer(persistence.KafkaConfig{Brokers: strings.Split(*brokers, ","), ClientID: "kprobe"}, slog.New(slog.DiscardHandler), nopMetrics{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	value := []byte(strings.Repeat("x", 300))
	start := time.Now()
	n := int(dur.Seconds() * float64(*rate))
	for i := range n {
		due := start.Add(time.Duration(i) * time.Second / time.Duration(*rate))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		sent := time.Now()
		wg.Add(1)
		err := p.Send(&persistence.Record{Topic: "chat.messages", Key: fmt.Sprint("k", i%*keys), Value: value, Done: func(err error) {
			mu.Lock()
			lat = append(lat, time.Since(sent))
			mu.Unlock()
			wg.Done()
		}})
		if err != nil {
			wg.Done()
		}
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(f float64) time.Duration { return lat[int(f*float64(len(lat)-1))] }
	fmt.Printf("sent %d in %v: p50 %v p90 %v p99 %v max %v\n", len(lat), time.Since(start).Round(time.Millisecond), q(.5), q(.9), q(.99), q(1))
}
