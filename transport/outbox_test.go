package transport

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestOutboxIsBounded(t *testing.T) {
	block := make(chan struct{})
	var mu sync.Mutex
	var got []string
	overflowed := make(chan struct{}, 1)
	o := NewOutbox(4, func(fs []*Frame) error {
		<-block
		mu.Lock()
		for _, f := range fs {
			got = append(got, f.Name)
		}
		mu.Unlock()
		return nil
	}, func() { overflowed <- struct{}{} }, func(error) {})
	o.Push(NewFrame("a", nil))
	deadline := time.Now().Add(time.Second)
	for o.Len() != 0 && time.Now().Before(deadline) { // a is taken by the writer, which blocks
		time.Sleep(time.Millisecond)
	}
	for _, n := range []string{"b", "c", "d", "e"} {
		if !o.Push(NewFrame(n, nil)) {
			t.Fatalf("push %s refused", n)
		}
	}
	// a is in flight; b..e wait (4): one more overflows and closes.
	if o.Push(NewFrame("f", nil)) {
		t.Fatal("a fifth waiting frame was queued")
	}
	select {
	case <-overflowed:
	case <-time.After(time.Second):
		t.Fatal("overflow not reported")
	}
	close(block)
	if o.Push(NewFrame("g", nil)) {
		t.Fatal("a closed outbox took a frame")
	}
}

func TestOutboxWritesInOrderAndStopsOnError(t *testing.T) {
	var mu sync.Mutex
	var got []string
	failed := make(chan error, 1)
	o := NewOutbox(100, func(fs []*Frame) error {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range fs {
			got = append(got, f.Name)
			if f.Name == "boom" {
				return errors.New("boom")
			}
		}
		return nil
	}, func() {}, func(err error) { failed <- err })
	for _, n := range []string{"1", "2", "3", "boom", "4"} {
		o.Push(NewFrame(n, nil))
	}
	select {
	case <-failed:
	case <-time.After(time.Second):
		t.Fatal("write error not reported")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) < 4 || got[0] != "1" || got[1] != "2" || got[2] != "3" || got[3] != "boom" {
		t.Fatalf("written %v", got)
	}
}

func TestNativeEncodingIsValidJSONAndCached(t *testing.T) {
	f := NewFrame("message:new", []byte(`{"a":1}`))
	b := f.Native()
	var v struct {
		Event string          `json:"event"`
		Data  json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.Event != "message:new" || string(v.Data) != `{"a":1}` {
		t.Fatalf("%s: %v", b, err)
	}
	if &f.Native()[0] != &b[0] {
		t.Fatal("the frame was encoded twice")
	}
	if err := json.Unmarshal(NewFrame("we\"ird", nil).Native(), &v); err != nil || v.Event != "we\"ird" {
		t.Fatalf("escaping: %v", err)
	}
}
