package testenv

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Runner is what a TestMain runs: *testing.M, or what wraps it.
type Runner interface{ Run() int }

// RemovingBuild returns m whose Run, once the tests are over, removes the
// binary BuildCaasd built, so that a package's test runs leave no 100 MB
// binaries behind in the temp directory.
func RemovingBuild(m Runner) Runner { return removingBuild{m} }

type removingBuild struct{ m Runner }

func (r removingBuild) Run() int {
	code := r.m.Run()
	if build.dir != "" {
		if err := os.RemoveAll(build.dir); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: removing the caasd build: %v\n", err)
		}
	}
	return code
}

// BuildCaasd builds cmd/caasd once per test binary, with the race detector
// when the tests run with it, and returns the binary's path.
func BuildCaasd(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "caasd-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.dir = dir
		build.path = filepath.Join(dir, "caasd")
		args := []string{"build", "-o", build.path}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/caasd/caasd/cmd/caasd")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// Proc is a caasd process.
type Proc struct {
	Addr string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	logs strings.Builder
}

// StartProc runs caasd with env (on top of a minimal environment) and waits
// until it serves. It is killed at cleanup if still running.
func StartProc(t testing.TB, env map[string]string) *Proc {
	t.Helper()
	bin := BuildCaasd(t)
	addr := env["HTTP_ADDR"]
	if addr == "" || strings.HasSuffix(addr, ":0") {
		addr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "HTTP_ADDR=" + addr, "GORACE=halt_on_error=1"}
	for k, v := range env {
		if k != "HTTP_ADDR" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &Proc{Addr: addr, cmd: cmd, done: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			if p.logs.Len() < 4<<20 {
				p.logs.WriteString(line)
				p.logs.WriteByte('\n')
			}
			p.mu.Unlock()
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() { p.Kill() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("caasd exited at start:\n%s", p.Logs())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Kill()
			t.Fatalf("caasd did not start within 60 s:\n%s", p.Logs())
		}
	}
}

// Logs returns what the process logged so far.
func (p *Proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Signal sends sig.
func (p *Proc) Signal(sig os.Signal) { _ = p.cmd.Process.Signal(sig) }

// Wait waits up to d for the process to end.
func (p *Proc) Wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// ProcEnv returns the environment of a caasd process on these services.
func (e *Env) ProcEnv(vars map[string]string) map[string]string {
	env := map[string]string{
		"JWT_SECRET":       JWTSecret,
		"REDIS_URL":        e.RedisURL,
		"KAFKA_BROKERS":    e.Kafka.Addrs()[0],
		"MONGO_URI":        "mongodb://" + e.MongoAddr + "/",
		"LOG_LEVEL":        "info",
		"KAFKA_PARTITIONS": "4",
	}
	for k, v := range vars {
		env[k] = v
	}
	return env
}
