package main

import (
	"net"
	"testing"
	"time"
)

// TestArrivalIsWhenTheDataCame reads data 200 ms after it was written: the
// arrival must be the write's time, not the read's.
func TestArrivalIsWhenTheDataCame(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wrote := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			wrote <- 0
			return
		}
		defer c.Close()
		time.Sleep(20 * time.Millisecond)
		wrote <- time.Now().UnixNano()
		_, _ = c.Write([]byte("hello"))
		time.Sleep(time.Second) // no end of stream while the client reads
	}()
	c, err := arrivalDialer{&net.Dialer{Timeout: 5 * time.Second}}.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ac := c.(*arrivalConn)
	at := <-wrote
	if at == 0 {
		t.Fatal("accept failed")
	}
	time.Sleep(200 * time.Millisecond)
	buf := make([]byte, 64)
	n, err := ac.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	read := time.Now().UnixNano()
	got := ac.arrival(read)
	if d := time.Duration(got - at); d < 0 || d > 50*time.Millisecond {
		t.Errorf("arrival %v after the write, want within 50 ms", d)
	}
	if d := time.Duration(read - got); d < 150*time.Millisecond {
		t.Errorf("arrival only %v before the read, want about 200 ms", d)
	}
}

func TestArrivalStampRejectsShortControlData(t *testing.T) {
	for _, oob := range [][]byte{nil, make([]byte, 8), make([]byte, 40)} {
		if _, ok := arrivalStamp(oob); ok {
			t.Errorf("stamp found in %d zero bytes", len(oob))
		}
	}
}
