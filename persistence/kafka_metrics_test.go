package persistence

import (
	"testing"

	"github.com/rcrowley/go-metrics"
)

// TestQuietRegistryGivesNoOpMetrics asks the way sarama does: by
// constructor and by value, through the helpers it calls.
func TestQuietRegistryGivesNoOpMetrics(t *testing.T) {
	r := quietRegistry{}
	if _, ok := metrics.GetOrRegisterMeter("m", r).(metrics.NilMeter); !ok {
		t.Error("meter is not a no-op")
	}
	if _, ok := metrics.GetOrRegisterCounter("c", r).(metrics.NilCounter); !ok {
		t.Error("counter is not a no-op")
	}
	if _, ok := metrics.GetOrRegisterGauge("g", r).(metrics.NilGauge); !ok {
		t.Error("gauge is not a no-op")
	}
	h := r.GetOrRegister("h", func() metrics.Histogram {
		return metrics.NewHistogram(metrics.NewExpDecaySample(1028, 0.015))
	}).(metrics.Histogram)
	if _, ok := h.(metrics.NilHistogram); !ok {
		t.Error("histogram is not a no-op")
	}
	if got := r.GetOrRegister("t", func() metrics.Timer { return metrics.NilTimer{} }); got == nil {
		t.Error("another kind's constructor was not called")
	}
	n := 0
	r.Each(func(string, any) { n++ })
	if n != 0 || r.Get("m") != nil {
		t.Error("something was registered")
	}
}
