package kepmlog

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The crash-safe spool through the Go API: Options.SpoolDir reaches the core, a run whose
// broker never answers leaves its records on disk, the job's next run sends them first
// (Stats.Recovered), and a spool directory other users can write is refused with the fix.
func TestSpoolReplaysWhatARunWithoutABrokerLeft(t *testing.T) {
	d := startDevagent(t, "KeeperLogger")
	spool := filepath.Join(t.TempDir(), "spool")
	first, err := New(Options{
		Source: "SpoolGo", JobID: "spool-go", Token: "GoTest", SpoolDir: spool,
		BrokerHost: "127.0.0.1", BrokerPort: 1, // nothing listens there
		Quiet: true, NoUndeliveredToStderr: true,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for i := 0; i < 20; i++ {
		if err := first.Info("Spool", "spooled"); err != nil {
			t.Fatal(err)
		}
	}
	var e *Error
	if err := first.Shutdown(300 * time.Millisecond); !errors.As(err, &e) || e.Undelivered != 20 {
		t.Fatalf("Shutdown: %v, want 20 undelivered", err)
	}

	second, err := New(Options{
		Source: "SpoolGo", JobID: "spool-go", Token: "GoTest", SpoolDir: spool,
		APIBase: d.apiBase(), CABundle: d.ca(),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	st, err := second.Stats()
	if err != nil || st.Recovered != 20 || st.SpoolDropped != 0 {
		t.Fatalf("Stats: %+v, %v; want 20 recovered", st, err)
	}
	if err := second.Info("Spool", "second run"); err != nil {
		t.Fatal(err)
	}
	if err := second.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var got []string
	for _, m := range d.messages("KeeperLogger", 22) {
		var p struct {
			MetaData struct{ Category, Message string }
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if p.MetaData.Category != "kepmlog" {
			got = append(got, p.MetaData.Message)
		}
	}
	if len(got) != 21 || got[0] != "spooled" || got[20] != "second run" {
		t.Fatalf("the broker received %q", got)
	}
}

func TestSpoolDirectoryOthersCanWriteIsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := New(Options{JobID: "spool-go", Token: "GoTest", SpoolDir: dir, BrokerHost: "127.0.0.1", BrokerPort: 1})
	var e *Error
	if !errors.As(err, &e) || e.Status != StatusInvalidArgument || !strings.Contains(e.Msg, "chmod 700") {
		t.Fatalf("New: %v, want an invalid-argument error naming chmod 700", err)
	}
}
