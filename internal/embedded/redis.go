package embedded

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// Redis is an in-process Redis server. Its data lives in memory; with a
// directory, what it holds when it is closed is saved there and loaded at
// the next start.
type Redis struct {
	m         *miniredis.Miniredis
	dir       string
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// expireEvery is how often the embedded Redis's TTLs are run down.
// miniredis counts a TTL down only when told to (FastForward), so without
// this no key would ever expire: a status key per message would stay for
// good, and a cached conversation never be read again. A run takes off
// every TTL the time since the last run, so a key set just before it
// loses up to this much too early: it must stay well below the shortest
// TTL that matters, a room lease's 4 s renewed every second. A run looks
// at every key, sorted, under miniredis's lock, which holds every command
// meanwhile: 100–190 ms at 100,000 keys (a status key per message of the
// last MESSAGE_STATUS_TTL_S), so many keys cost the embedded default that
// much every period.
const expireEvery = 2 * time.Second

// dumpFile is the file, in the Redis directory, of the data saved at Close.
const dumpFile = "dump.jsonl"

// StartRedis starts miniredis on a loopback port, with its TTLs running
// down with the wall clock. With dir, it first loads what the last Close
// saved there, and removes the file: a later crash must not bring back
// counters older than what that run gave out.
func StartRedis(dir string) (*Redis, error) {
	return startRedis(dir, expireEvery)
}

func startRedis(dir string, every time.Duration) (*Redis, error) {
	m := miniredis.NewMiniRedis()
	if dir != "" {
		if err := load(m, filepath.Join(dir, dumpFile)); err != nil {
			return nil, err
		}
	}
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("start embedded redis: %w", err)
	}
	r := &Redis{m: m, dir: dir, stop: make(chan struct{}), done: make(chan struct{})}
	go r.expire(every)
	return r, nil
}

// expire runs the TTLs down by the time gone since the last run.
func (r *Redis) expire(every time.Duration) {
	defer close(r.done)
	wait := time.NewTimer(every)
	defer wait.Stop()
	last := time.Now()
	for {
		select {
		case <-r.stop:
			return
		case <-wait.C:
		}
		now := time.Now()
		r.m.FastForward(now.Sub(last))
		last = now
		wait.Reset(every)
	}
}

// URL returns the redis:// URL of the server.
func (r *Redis) URL() string { return "redis://" + r.m.Addr() }

// Close stops the server and, with a directory, saves its data there. The
// caller closes it once nothing writes to it any more.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() {
		close(r.stop)
		<-r.done
		r.m.Close()
		if r.dir != "" {
			r.closeErr = save(r.m, r.dir)
		}
	})
	return r.closeErr
}

// dumpHeader is the first line of a dump.
type dumpHeader struct {
	SavedAtMs int64 `json:"saved_at_ms"`
}

// dumpKey is one key of a dump. Values are bytes (base64 in JSON): a
// string may hold anything.
type dumpKey struct {
	Key   string            `json:"k"`
	Type  string            `json:"t"`
	Str   []byte            `json:"s,omitempty"`
	List  [][]byte          `json:"l,omitempty"`
	Hash  map[string][]byte `json:"h,omitempty"`
	TTLMs int64             `json:"ttl_ms,omitempty"`
}

// save writes every string, list and hash key of m, with its TTL, to
// dir; the only types caasd uses.
func save(m *miniredis.Miniredis, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save embedded redis: %w", err)
	}
	tmp, err := os.CreateTemp(dir, dumpFile+".*")
	if err != nil {
		return fmt.Errorf("save embedded redis: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing to remove
	w := bufio.NewWriter(tmp)
	enc := json.NewEncoder(w)
	err = enc.Encode(dumpHeader{SavedAtMs: time.Now().UnixMilli()})
	for _, k := range m.Keys() {
		if err != nil {
			break
		}
		d := dumpKey{Key: k, Type: m.Type(k), TTLMs: m.TTL(k).Milliseconds()}
		switch d.Type {
		case "string":
			var v string
			v, err = m.Get(k)
			d.Str = []byte(v)
		case "list":
			var vs []string
			vs, err = m.List(k)
			for _, v := range vs {
				d.List = append(d.List, []byte(v))
			}
		case "hash":
			var fields []string
			fields, err = m.HKeys(k)
			d.Hash = make(map[string][]byte, len(fields))
			for _, f := range fields {
				d.Hash[f] = []byte(m.HGet(k, f))
			}
		default:
			continue
		}
		if err == nil {
			err = enc.Encode(d)
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, dumpFile))
	}
	if err != nil {
		return fmt.Errorf("save embedded redis: %w", err)
	}
	return nil
}

// load reads a dump into m, less the time since it was saved off every
// TTL (keys whose TTL ran out meanwhile are left out), and removes it.
func load(m *miniredis.Miniredis, path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load embedded redis: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReader(f))
	var h dumpHeader
	if err := dec.Decode(&h); err != nil {
		return fmt.Errorf("load embedded redis %s: %w", path, err)
	}
	gone := time.Since(time.UnixMilli(h.SavedAtMs))
	for dec.More() {
		var d dumpKey
		if err := dec.Decode(&d); err != nil {
			return fmt.Errorf("load embedded redis %s: %w", path, err)
		}
		ttl := time.Duration(d.TTLMs) * time.Millisecond
		if d.TTLMs > 0 {
			if ttl -= gone; ttl <= 0 {
				continue
			}
		}
		switch d.Type {
		case "string":
			err = m.Set(d.Key, string(d.Str))
		case "list":
			vs := make([]string, len(d.List))
			for i, v := range d.List {
				vs[i] = string(v)
			}
			_, err = m.Push(d.Key, vs...)
		case "hash":
			for field, v := range d.Hash {
				m.HSet(d.Key, field, string(v))
			}
		}
		if err != nil {
			return fmt.Errorf("load embedded redis %s: key %s: %w", path, d.Key, err)
		}
		if d.TTLMs > 0 {
			m.SetTTL(d.Key, ttl)
		}
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("load embedded redis: %w", err)
	}
	return nil
}
