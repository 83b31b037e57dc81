package turn

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// gatherValue returns the value of the unlabelled metric name in g.
func gatherValue(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if m.GetGauge() != nil {
			return m.GetGauge().GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// assertGauges checks turn_servers_total and turn_servers_healthy.
func assertGauges(t testing.TB, g prometheus.Gatherer, total, healthy float64) {
	t.Helper()
	if got := gatherValue(t, g, "turn_servers_total"); got != total {
		t.Fatalf("turn_servers_total = %v, want %v", got, total)
	}
	if got := gatherValue(t, g, "turn_servers_healthy"); got != healthy {
		t.Fatalf("turn_servers_healthy = %v, want %v", got, healthy)
	}
}
