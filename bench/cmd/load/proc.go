package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat (USER_HZ, 100
// on every Linux architecture caasd runs on).
const userHZ = 100

// rssKiB reads VmRSS of pid from /proc/<pid>/status.
func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status of %d: %w", pid, err)
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(v))
			if len(f) < 1 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// statFields reads /proc/<pid>/stat from field 3 (state) on: f[k] is
// field k+3. The command name (field 2) may hold spaces, so the fields
// are counted after its ')'.
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 17 {
		return nil, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return f, nil
}

// cpuTime reads utime+stime (fields 14 and 15) of pid.
func cpuTime(pid int) (time.Duration, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return time.Duration(u+s) * time.Second / userHZ, nil
}

// niceOf reads the nice value (field 19) of pid: the results say at which
// priority the store ran beside Kafka, Redis and the load tool.
func niceOf(pid int) (int, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(f[16])
	if err != nil {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return n, nil
}

// cpuMeter measures the CPU use of one or more processes over an interval.
type cpuMeter struct {
	pids  []int
	start time.Time
	cpu   time.Duration
}

// startCPU meters the processes of pids; zeros (absent processes) are left out.
func startCPU(pids ...int) (*cpuMeter, error) {
	m := &cpuMeter{}
	for _, pid := range pids {
		if pid > 0 {
			m.pids = append(m.pids, pid)
		}
	}
	if len(m.pids) == 0 {
		return nil, fmt.Errorf("no pid")
	}
	c, err := m.total()
	if err != nil {
		return nil, err
	}
	m.start, m.cpu = time.Now(), c
	return m, nil
}

func (m *cpuMeter) total() (time.Duration, error) {
	var sum time.Duration
	for _, pid := range m.pids {
		c, err := cpuTime(pid)
		if err != nil {
			return 0, err
		}
		sum += c
	}
	return sum, nil
}

// percent returns the CPU used since start as a percentage of one core.
func (m *cpuMeter) percent() float64 {
	c, err := m.total()
	if err != nil {
		return -1
	}
	wall := time.Since(m.start)
	if wall <= 0 {
		return 0
	}
	return 100 * float64(c-m.cpu) / float64(wall)
}

// pct is percent rounded to a tenth, or -1 without a meter.
func (m *cpuMeter) pct() float64 {
	if m == nil {
		return -1
	}
	return round1(m.percent())
}

// loadAvg returns the first three fields of /proc/loadavg: the machine is
// shared, and the figures are read next to it.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// servicesCPU is the backing services' CPU over an interval, % of one
// core: on this bench they share the load tool's core, so their shares
// say what caasd's hops to them wait for.
type servicesCPU struct {
	// Services is Kafka and FerretDB together (-services-pid, -mongo-pid).
	Services float64 `json:"services_cpu_pct"`
	Mongo    float64 `json:"mongo_cpu_pct,omitempty"`
	Redis    float64 `json:"redis_cpu_pct,omitempty"`
}

// serviceMeters meters the backing services over one interval.
type serviceMeters struct{ all, mongo, redis *cpuMeter }

func (c *config) startServices() serviceMeters {
	all, _ := startCPU(c.servicesPID, c.mongoPID)
	mongo, _ := startCPU(c.mongoPID)
	redis, _ := startCPU(c.redisPID)
	return serviceMeters{all: all, mongo: mongo, redis: redis}
}

// read is the services' CPU since the meters started.
func (m serviceMeters) read() servicesCPU {
	return servicesCPU{Services: m.all.pct(), Mongo: m.mongo.pct(), Redis: m.redis.pct()}
}
