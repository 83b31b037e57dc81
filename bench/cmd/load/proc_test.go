package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestNiceOfReadsTheProcessPriority(t *testing.T) {
	cmd := exec.Command("nice", "-n", "7", "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nice: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// nice sets the priority and then runs sleep: wait for the exec.
	deadline := time.Now().Add(5 * time.Second)
	for {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
		if strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nice did not run sleep within 5 s (comm %q)", comm)
		}
		time.Sleep(5 * time.Millisecond)
	}
	got, err := niceOf(cmd.Process.Pid)
	if err != nil {
		t.Fatalf("niceOf: %v", err)
	}
	if got != 7 {
		t.Fatalf("niceOf = %d, want 7", got)
	}
	if _, err := cpuTime(cmd.Process.Pid); err != nil {
		t.Fatalf("cpuTime: %v", err)
	}
}
