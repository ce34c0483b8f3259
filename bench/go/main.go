// Command bench-go: kepmlog from Go (bindings/go, cgo over the release libkepmlog.a): logs N
// records after one warm-up record, then Flush. Prints one JSON result line (see
// bench/src/lib.rs). Settings from KEPMLOG_BENCH_{HOST,PORT,CA,N,MESSAGE}; run by
// scripts/bench.sh.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	kepmlog "example.invalid/kepmlog/bindings/go"
)

const defaultMessage = "Scanned /var/lib/app/config/settings.json: 0 issues, 12 keys checked, policy strict, duration 3 ms, status OK ...."

func fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	out, _ := json.Marshal(map[string]any{"peer": "kepmlog-go", "error": msg})
	fmt.Println(string(out))
	fmt.Fprintln(os.Stderr, "kepmlog-go:", msg)
	os.Exit(1)
}

func cpuUs() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Sec*1e6 + ru.Utime.Usec + ru.Stime.Sec*1e6 + ru.Stime.Usec
}

// peakRSSKb is VmHWM: ru_maxrss would include the driver's, which Linux carries over fork + exec.
func peakRSSKb() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb
		}
	}
	return 0
}

func pct(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)) * p)
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func main() {
	host := os.Getenv("KEPMLOG_BENCH_HOST")
	if host == "" {
		host = "127.0.0.1"
	}
	port, err := strconv.Atoi(os.Getenv("KEPMLOG_BENCH_PORT"))
	if err != nil {
		fail("KEPMLOG_BENCH_PORT: %v", err)
	}
	ca := os.Getenv("KEPMLOG_BENCH_CA")
	n := 100000
	if v := os.Getenv("KEPMLOG_BENCH_N"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			fail("KEPMLOG_BENCH_N=%s is not a positive count", v)
		}
	}
	message := os.Getenv("KEPMLOG_BENCH_MESSAGE")
	if message == "" {
		message = defaultMessage
	}
	capacity := n
	if capacity < 65536 {
		capacity = 65536
	}
	// The whole burst fits in the queue; blocking is only a safety net (as in bench-kepmlog).
	l, err := kepmlog.New(kepmlog.Options{
		Source: "BenchTool", JobID: "bench-job", Token: "go",
		BrokerHost: host, BrokerPort: uint16(port), CABundle: ca,
		QueueCapacity: capacity, BlockWhenFull: time.Minute, Args: []string{"bench-go"},
	})
	if err != nil {
		fail("New: %v", err)
	}
	if err := l.Info("Bench", "warm-up"); err != nil {
		fail("warm-up: %v", err)
	}
	if err := l.Flush(30 * time.Second); err != nil {
		fail("warm-up flush (is the broker up?): %v", err)
	}
	before, _ := l.Stats()

	lat := make([]int64, n)
	refused := 0
	cpu0 := cpuUs()
	t0 := time.Now()
	for i := range lat {
		a := time.Now()
		err := l.Info("Bench", message)
		lat[i] = int64(time.Since(a))
		if err != nil {
			refused++
		}
	}
	flushErr := l.Flush(300 * time.Second)
	secs := time.Since(t0).Seconds()
	cpu1, maxrss := cpuUs(), peakRSSKb()
	after, _ := l.Stats()
	_ = l.Close()

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	out := map[string]any{
		"peer": "kepmlog-go", "n": n, "acked": after.Delivered - before.Delivered, "secs": secs,
		"cpu_us": cpu1 - cpu0, "maxrss_kb": maxrss,
		"p50_ns": pct(lat, 0.5), "p99_ns": pct(lat, 0.99), "p999_ns": pct(lat, 0.999),
		"refused": refused, "dropped": after.Dropped,
	}
	if flushErr != nil {
		out["error"] = "flush: " + flushErr.Error()
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
}
