package kepmlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const jobID = "vector-go"

func newLogger(t *testing.T, d *devagent, opts Options) *Logger {
	t.Helper()
	opts.JobID = jobID
	opts.Token = "GoTest"
	opts.APIBase = d.apiBase()
	opts.CABundle = d.ca()
	l, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestVectors(t *testing.T) {
	d := startDevagent(t, "KeeperLogger")
	raw, err := os.ReadFile(filepath.Join(repoRoot(), "tests", "vectors", "records.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Logger struct {
			Source          string `json:"source"`
			DefaultCategory string `json:"default_category"`
		} `json:"logger"`
		Cases []struct {
			Name  string `json:"name"`
			Input struct {
				Level         int    `json:"level"`
				Category      string `json:"category"`
				Message       string `json:"message"`
				CorrelationID string `json:"correlation_id"`
				Context       string `json:"context"`
			} `json:"input"`
			Expect map[string]any `json:"expect"`
			Error  string         `json:"error"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	l := newLogger(t, d, Options{Source: doc.Logger.Source, DefaultCategory: doc.Logger.DefaultCategory})
	kinds := map[string]error{"empty_message": ErrEmptyMessage, "invalid_level": ErrInvalidLevel}
	var want []map[string]any
	var names []string
	for _, c := range doc.Cases {
		in := c.Input
		err := l.LogWith(Level(in.Level), in.Category, in.Message, in.CorrelationID, in.Context)
		if c.Error != "" {
			if !errors.Is(err, kinds[c.Error]) {
				t.Errorf("case %q: got %v, want %s", c.Name, err, c.Error)
			}
			continue
		}
		if err != nil {
			t.Errorf("case %q: %v", c.Name, err)
		}
		want = append(want, c.Expect)
		names = append(names, c.Name)
	}
	if err := l.Flush(20 * time.Second); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	got := d.messages("KeeperLogger", len(want))
	if len(got) != len(want) {
		t.Fatalf("broker received %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if md := metaData(t, got[i]); !reflect.DeepEqual(md, want[i]) {
			t.Errorf("case %q:\n got %v\nwant %v", names[i], md, want[i])
		}
	}
	st, err := l.Stats()
	if err != nil || st.Delivered != uint64(len(want)) || st.Accepted != st.Delivered || !st.Connected {
		t.Errorf("stats %+v, %v", st, err)
	}
	if !strings.HasPrefix(l.ClientID(), jobID+"_GoTest_") {
		t.Errorf("client id %q", l.ClientID())
	}
}

func TestBadInput(t *testing.T) {
	d := startDevagent(t, "KeeperLogger")
	l := newLogger(t, d, Options{Source: "GoBad", Quiet: true})
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"empty", l.Info("C", ""), ErrEmptyMessage},
		{"blank", l.Info("C", " \r\n"), ErrEmptyMessage},
		{"level 6", l.Log(Level(6), "C", "m"), ErrInvalidLevel},
		{"level -1", l.Log(Level(-1), "C", "m"), ErrInvalidLevel},
		{"invalid UTF-8", l.Info("C", "bad \xff"), ErrInvalidUTF8},
		{"NUL", l.Info("C", "a\x00b"), ErrInvalidArgument},
		{"event array", l.Event([]int{1}), ErrInvalidEvent},
		{"event text", l.EventJSON("nope"), ErrInvalidEvent},
		{"event func", l.Event(func() {}), ErrInvalidEvent},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.err, c.want)
		}
	}
	var e *Error
	if err := l.Info("C", ""); !errors.As(err, &e) || !strings.Contains(e.Msg, "non-empty") {
		t.Errorf("error text does not name the fix: %v", err)
	}
	if _, err := New(Options{JobID: "bad_id", APIBase: d.apiBase()}); !errors.Is(err, ErrInvalidJobID) {
		t.Errorf("bad job id: %v", err)
	}
	t.Setenv("KEEPER_JOB_ID", "")
	if _, err := New(Options{APIBase: d.apiBase()}); !errors.Is(err, ErrMissingJobID) || !strings.Contains(err.Error(), "mqttTopics") {
		t.Errorf("missing job id: %v", err)
	}
	if _, err := New(Options{JobID: jobID, QueueCapacity: -1}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("negative capacity: %v", err)
	}
	if err := l.Info("C", "one good record"); err != nil {
		t.Fatal(err)
	}
	if err := l.Shutdown(10 * time.Second); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := l.Info("C", "late"); !errors.Is(err, ErrShutDown) {
		t.Errorf("after shutdown: %v", err)
	}
	if st, err := l.Stats(); err != nil || st.Delivered != 1 {
		t.Errorf("stats after shutdown %+v %v", st, err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close after Shutdown: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := l.Info("C", "after close"); !errors.Is(err, ErrShutDown) {
		t.Errorf("after close: %v", err)
	}
	if err := l.Flush(time.Second); !errors.Is(err, ErrShutDown) {
		t.Errorf("flush after close: %v", err)
	}
}

func TestEventsAndDenial(t *testing.T) {
	d := startDevagent(t, "KeeperLogger", "Jobs/vector-go/events")
	l := newLogger(t, d, Options{Source: "GoEvents"})
	if err := l.Event(map[string]any{"phase": "scan", "files": 3}); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	got := d.messages("Jobs/vector-go/events", 1)
	if len(got) != 1 || !strings.Contains(string(got[0].Payload), `"files":3`) {
		t.Fatalf("events %v", got)
	}
	denied := newLogger(t, d, Options{Source: "GoDenied", EventTopic: "Jobs/other/events", Quiet: true})
	if err := denied.EventJSON(`{"x":1}`); err != nil {
		t.Fatal(err)
	}
	err := denied.Flush(20 * time.Second)
	if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "allowedPublications") {
		t.Errorf("denied flush: %v", err)
	}
}

func TestSlogHandler(t *testing.T) {
	d := startDevagent(t, "KeeperLogger")
	l := newLogger(t, d, Options{Source: "GoSlog"})
	log := slog.New(NewHandler(l, &HandlerOptions{Level: slog.LevelDebug - 4, Category: "Slog"}))
	log.Log(context.Background(), slog.LevelDebug-4, "verbose line")
	log.Debug("debug line")
	log.Info("info line", "files", 3, "path", "/opt/my app")
	log.Warn("warn line", "category", "Scan")
	log.Error("error line", slog.Group("g", "a", 1, slog.Group("h", "b", true)), slog.Group("empty"))
	log.Log(context.Background(), slog.LevelError+4, "critical line")
	log.With("category", "Phase", "run", 7).WithGroup("req").With("id", "r1").Info("grouped", "n", 2, "correlation_id", "not-top")
	log.With("correlation_id", "run-42").Info("")
	quiet := slog.New(NewHandler(l, nil))
	quiet.Debug("filtered out")
	quiet.Info("default handler")
	if err := l.Flush(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		level                      float64
		category, message, corrlID string
	}{
		{5, "Slog", "verbose line", ""},
		{0, "Slog", "debug line", ""},
		{1, "Slog", `info line files=3 path="/opt/my app"`, ""},
		{2, "Scan", "warn line", ""},
		{3, "Slog", "error line g.a=1 g.h.b=true", ""},
		{4, "Slog", "critical line", ""},
		{1, "Phase", "grouped run=7 req.id=r1 req.n=2 req.correlation_id=not-top", ""},
		{1, "Slog", "(empty message)", "run-42"},
		{1, "General", "default handler", ""},
	}
	got := d.messages("KeeperLogger", len(want))
	if len(got) != len(want) {
		t.Fatalf("broker received %d records, want %d", len(got), len(want))
	}
	for i, w := range want {
		md := metaData(t, got[i])
		if md["LogLevel"] != w.level || md["Category"] != w.category || md["Message"] != w.message || md["CorrelationId"] != w.corrlID {
			t.Errorf("record %d: got %v, want %+v", i, md, w)
		}
	}
	for lv, want := range map[slog.Level]Level{
		slog.LevelDebug - 4: LevelVerbose, slog.LevelDebug - 1: LevelVerbose, slog.LevelDebug: LevelDebug,
		slog.LevelInfo: LevelInfo, slog.LevelWarn: LevelWarning, slog.LevelError: LevelError,
		slog.LevelError + 3: LevelError, slog.LevelError + 4: LevelCritical, slog.LevelError + 8: LevelCritical,
	} {
		if got := SlogLevel(lv); got != want {
			t.Errorf("SlogLevel(%v) = %v, want %v", lv, got, want)
		}
	}
}

// 8 goroutines log while another shuts the logger down, then while it is closed: no crash,
// and accepted = delivered + denied + failed, failed = the undelivered count reported.
func TestConcurrentLoggingShutdownAndClose(t *testing.T) {
	d := startDevagent(t, "KeeperLogger")
	l := newLogger(t, d, Options{Source: "GoThreads", QueueCapacity: 4096})
	hammer := func(n int) map[string]int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		counts := map[string]int{}
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				local := map[string]int{}
				for i := 0; i < n; i++ {
					err := l.Info("Threads", fmt.Sprintf("goroutine %d record %d", g, i))
					switch {
					case err == nil:
						local["ok"]++
					case errors.Is(err, ErrQueueFull):
						local["full"]++
					case errors.Is(err, ErrShutDown):
						local["shut"]++
					default:
						local["other"]++
					}
				}
				mu.Lock()
				for k, v := range local {
					counts[k] += v
				}
				mu.Unlock()
			}(g)
		}
		wg.Wait()
		return counts
	}
	done := make(chan error, 1)
	go func() {
		time.Sleep(20 * time.Millisecond)
		done <- l.Shutdown(5 * time.Second)
	}()
	counts := hammer(10000)
	shutErr := <-done
	t.Logf("calls: %v, shutdown: %v", counts, shutErr)
	if counts["other"] != 0 || counts["ok"]+counts["full"]+counts["shut"] != 8*10000 {
		t.Errorf("counts %v", counts)
	}
	st, err := l.Stats()
	if err != nil {
		t.Fatal(err)
	}
	var undelivered uint64
	var e *Error
	if errors.As(shutErr, &e) {
		undelivered = e.Undelivered
	} else if shutErr != nil {
		t.Errorf("Shutdown: %v", shutErr)
	}
	if st.Accepted != uint64(counts["ok"]) || st.Accepted != st.Delivered+st.Denied+st.Failed || st.Failed != undelivered || st.Pending != 0 {
		t.Errorf("stats %+v, ok %d, undelivered %d", st, counts["ok"], undelivered)
	}
	// The library adds one Warning record about the drops: count this test's records only.
	threads := func() (n uint64) {
		for _, m := range d.messages("KeeperLogger", 0) {
			if metaData(t, m)["Category"] == "Threads" {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for threads() < st.Delivered && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := threads(); got != st.Delivered {
		t.Errorf("broker received %d, delivered %d", got, st.Delivered)
	}
	go func() { _ = l.Close() }()
	after := hammer(1000)
	if after["ok"] != 0 || after["shut"] != 8*1000 {
		t.Errorf("logging during/after Close: %v", after)
	}
}
