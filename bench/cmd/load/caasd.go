package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/caasd/caasd/internal/auth"
)

// server is the server under test, reached over HTTP for its admin API,
// metrics and profiles (caasd's; Centrifugo's profiles and metrics), and
// over /proc for its memory and CPU.
type server struct {
	target string
	proto  protocol
	// goServer: the server is a Go program serving /debug/pprof and
	// /metrics (caasd, Centrifugo); Node's Socket.IO server is not.
	goServer bool
	base     string // http://host:port
	pid      int
	secret   string
	tenant   string
	admin    string // admin JWT
	http     *http.Client
}

func newServer(target, addr string, pid int, secret, tenant string) (*server, error) {
	proto, err := newProtocol(target)
	if err != nil {
		return nil, err
	}
	tok, err := auth.Mint(secret, auth.Principal{UserID: "bench-admin", TenantID: tenant, Roles: []string{auth.RoleAdmin}}, 6*time.Hour)
	if err != nil {
		return nil, err
	}
	return &server{
		target: target, proto: proto, goServer: target != targetSocketIO, base: "http://" + addr, pid: pid, secret: secret, tenant: tenant, admin: tok,
		http: &http.Client{Timeout: 2 * time.Minute},
	}, nil
}

// token mints a user token of the bench tenant: an HS256 JWT whose subject
// is user, which Socket.IO's bench server and Centrifugo check as well.
func (s *server) token(user string) (string, error) {
	return auth.Mint(s.secret, auth.Principal{UserID: user, TenantID: s.tenant}, 6*time.Hour)
}

func (s *server) do(ctx context.Context, method, path string, body any, out io.Writer) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.admin)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	if out == nil {
		out = io.Discard
	}
	_, err = io.Copy(out, resp.Body)
	return err
}

type participant struct {
	UserID string `json:"user_id"`
	Role   string `json:"role"`
}

// createConversation creates conversation id with users as members (the
// first one owner) through caasd's admin API. The other targets' rooms
// need no creating.
func (s *server) createConversation(ctx context.Context, id string, users []string) error {
	if s.target != targetCaasd {
		return nil
	}
	ps := make([]participant, len(users))
	for i, u := range users {
		ps[i] = participant{UserID: u, Role: "member"}
	}
	if len(ps) > 0 {
		ps[0].Role = "owner"
	}
	body := map[string]any{"conversation_id": id, "name": id, "participants": ps}
	return s.do(ctx, http.MethodPost, "/v1/admin/conversations", body, nil)
}

// rss returns caasd's resident memory in KiB.
func (s *server) rss() int64 {
	v, err := rssKiB(s.pid)
	if err != nil {
		return -1
	}
	return v
}

// forceGC makes the server collect garbage (a Go heap profile with gc=1;
// for Socket.IO, bench/socketio/server.js's /gc) and, when dir is set,
// keeps the profile as dir/name.
func (s *server) forceGC(ctx context.Context, dir, name string) error {
	if !s.goServer {
		return s.do(ctx, http.MethodGet, "/gc", nil, nil)
	}
	return s.profile(ctx, "/debug/pprof/heap?gc=1", dir, name)
}

// profile fetches a pprof endpoint into dir/name (discarded if dir is "").
// Node's Socket.IO server has none.
func (s *server) profile(ctx context.Context, path, dir, name string) error {
	if !s.goServer {
		return nil
	}
	if dir == "" {
		return s.do(ctx, http.MethodGet, path, nil, nil)
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	defer f.Close()
	return s.do(ctx, http.MethodGet, path, nil, f)
}

// cpuProfile takes a CPU profile of d in the background into dir/name; the
// returned channel closes when it is done. Without dir it does nothing.
func (s *server) cpuProfile(ctx context.Context, d time.Duration, dir, name string) <-chan struct{} {
	done := make(chan struct{})
	if dir == "" || d < time.Second || !s.goServer {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		path := "/debug/pprof/profile?seconds=" + strconv.Itoa(int(d/time.Second))
		if err := s.profile(ctx, path, dir, name); err != nil {
			fmt.Fprintln(os.Stderr, "cpu profile:", err)
		}
	}()
	return done
}

// metrics returns the gauges of caasd's /metrics that name in names.
func (s *server) metrics(ctx context.Context, names ...string) map[string]float64 {
	var b bytes.Buffer
	out := map[string]float64{}
	if !s.goServer {
		return out
	}
	if err := s.do(ctx, http.MethodGet, "/metrics", nil, &b); err != nil {
		return out
	}
	sc := bufio.NewScanner(&b)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, n := range names {
			if v, ok := strings.CutPrefix(line, n+" "); ok {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					out[n] = f
				}
			}
		}
	}
	return out
}

// histMean is a snapshot of a Prometheus histogram's sum and count.
type histMean struct{ sum, count float64 }

// histSnapshot reads the _sum and _count of histogram name.
func (s *server) histSnapshot(ctx context.Context, name string) histMean {
	m := s.metrics(ctx, name+"_sum", name+"_count")
	return histMean{sum: m[name+"_sum"], count: m[name+"_count"]}
}

// meanMsSince returns the histogram's mean in milliseconds over what was
// observed since before, and the number of observations.
func (s *server) meanMsSince(ctx context.Context, name string, before histMean) (float64, float64) {
	now := s.histSnapshot(ctx, name)
	n := now.count - before.count
	if n <= 0 {
		return 0, 0
	}
	return round1(1000 * (now.sum - before.sum) / n), n
}

// Histograms of caasd's /metrics the scenarios read.
const (
	metricPublish = "socket_messages_publish_latency_seconds"
	metricPersist = "kafka_messages_persistence_latency_seconds"
)
