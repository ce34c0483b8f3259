package kepmlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// stderr as the last resort, in child processes (this test binary again, running only
// TestStderrChild) so that what the library writes on stderr can be read exactly.

const stderrChildEnv = "KEPMLOG_TEST_STDERR_CHILD"

// TestStderrChild is the body of every child; skipped in a normal run.
func TestStderrChild(t *testing.T) {
	mode := os.Getenv(stderrChildEnv)
	if mode == "" {
		t.Skip("runs only as a child of the stderr tests")
	}
	var out any
	switch mode {
	case "fallback":
		l, err := New(Options{Source: "GoTool", Args: []string{"gotool"}})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			if err := l.Warning("Finding", fmt.Sprintf("record %d", i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Event(map[string]any{"phase": "done"}); err != nil {
			t.Fatal(err)
		}
		st, _ := l.Stats()
		out = map[string]any{"printed": st.Printed, "accepted": st.Accepted, "toStderr": l.WritesToStderr()}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	case "fail":
		// No job id: New fails, and nothing it made may fail later (finalizer, exit).
		_, err := New(Options{Source: "GoTool", Args: []string{"gotool"}})
		if !errors.Is(err, ErrMissingJobID) {
			t.Fatalf("got %v", err)
		}
		fmt.Fprintln(os.Stderr, err)
		runtimeGC()
	default: // down, off, up: 20 records and a shutdown with TIMEOUT_MS
		port := 0
		fmt.Sscan(os.Getenv("BROKER_PORT"), &port)
		l, err := New(Options{
			Source: "DownTool", JobID: "go-stderr-job", Token: "gotest", Args: []string{"gotool"},
			BrokerHost: "127.0.0.1", BrokerPort: uint16(port), CABundle: os.Getenv("BROKER_CA"),
			Quiet: true, NoUndeliveredToStderr: mode == "off",
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			if err := l.Info("Undelivered", fmt.Sprintf("u %d", i)); err != nil {
				t.Fatal(err)
			}
		}
		ms := 0
		fmt.Sscan(os.Getenv("TIMEOUT_MS"), &ms)
		err = l.Shutdown(time.Duration(ms) * time.Millisecond)
		var ke *Error
		left := uint64(0)
		if errors.As(err, &ke) {
			left = ke.Undelivered
		}
		st, _ := l.Stats()
		out = map[string]any{"left": left, "printed": st.Printed}
	}
	b, _ := json.Marshal(out)
	fmt.Printf("RESULT %s\n", b)
}

// runtimeGC runs the collector so that a finalizer set on a half-built logger would run.
func runtimeGC() {
	for i := 0; i < 3; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

type childRun struct {
	result map[string]any
	stdout string
	stderr string
	code   int
}

func runStderrChild(t *testing.T, mode string, env ...string) childRun {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStderrChild$", "-test.count=1")
	base := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEEPER_JOB_ID=") && !strings.HasPrefix(kv, "KEPMLOG_FALLBACK=") {
			base = append(base, kv)
		}
	}
	cmd.Env = append(append(base, stderrChildEnv+"="+mode), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := childRun{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(stdout.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			if err := json.Unmarshal([]byte(rest), &r.result); err != nil {
				t.Fatal(err)
			}
		}
	}
	return r
}

var utcStamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z `)

// recordLines are the record lines of stderr without their timestamps.
func recordLines(t *testing.T, stderr string) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if l == "" || strings.HasPrefix(l, "kepmlog:") {
			continue
		}
		if !utcStamp.MatchString(l) {
			t.Fatalf("not a record line: %q", l)
		}
		out = append(out, utcStamp.ReplaceAllString(l, ""))
	}
	return out
}

func twentyLines() []string {
	want := make([]string, 20)
	for i := range want {
		want[i] = fmt.Sprintf("Info     DownTool [Undelivered] u %d", i)
	}
	return want
}

func TestStderrFallbackWithoutJobID(t *testing.T) {
	r := runStderrChild(t, "fallback", "KEPMLOG_FALLBACK=stderr")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if n := strings.Count(r.stderr, "kepmlog: no job id (KEEPER_JOB_ID is not set)"); n != 1 {
		t.Fatalf("%d warnings:\n%s", n, r.stderr)
	}
	want := []string{}
	for i := 0; i < 10; i++ {
		want = append(want, fmt.Sprintf("Warning  GoTool [Finding] record %d", i))
	}
	want = append(want, `EVENT    GoTool {"phase":"done"}`)
	if got := recordLines(t, r.stderr); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r.result["printed"] != 11.0 || r.result["accepted"] != 0.0 || r.result["toStderr"] != true {
		t.Fatalf("stats %v", r.result)
	}
	bad := runStderrChild(t, "fallback", "KEPMLOG_FALLBACK=console")
	// t.Fatal in the child reports on its stdout.
	if bad.code == 0 || !strings.Contains(bad.stdout, `KEPMLOG_FALLBACK="console" is not one of "error", "stderr"`) {
		t.Fatalf("exit %d: %s", bad.code, bad.stdout)
	}
	if _, err := New(Options{Source: "T", Fallback: "console"}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("got %v", err)
	}
}

func TestStderrFailedNewLeavesNothingBehind(t *testing.T) {
	r := runStderrChild(t, "fail")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if strings.TrimSpace(r.stderr) == "" || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("want exactly the one error line, got:\n%s", r.stderr)
	}
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return fmt.Sprint(port)
}

func TestStderrUndeliveredAtShutdown(t *testing.T) {
	port := closedPort(t)
	r := runStderrChild(t, "down", "BROKER_PORT="+port, "TIMEOUT_MS=300")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := recordLines(t, r.stderr); strings.Join(got, "\n") != strings.Join(twentyLines(), "\n") {
		t.Fatalf("got\n%s", strings.Join(got, "\n"))
	}
	if r.result["left"] != 20.0 || r.result["printed"] != 20.0 {
		t.Fatalf("result %v", r.result)
	}
	off := runStderrChild(t, "off", "BROKER_PORT="+port, "TIMEOUT_MS=300")
	if off.code != 0 || off.stderr != "" || off.result["printed"] != 0.0 {
		t.Fatalf("exit %d, result %v, stderr:\n%s", off.code, off.result, off.stderr)
	}
}

func TestStderrNothingWhenDelivered(t *testing.T) {
	d := startDevagent(t, "KeeperLogger")
	port := fmt.Sprint(d.ready["broker_port"])
	r := runStderrChild(t, "up", "BROKER_PORT="+port, "BROKER_CA="+d.ca(), "TIMEOUT_MS=20000")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if r.result["left"] != 0.0 || r.result["printed"] != 0.0 {
		t.Fatalf("result %v", r.result)
	}
	if got := len(d.messages("KeeperLogger", 20)); got < 20 {
		t.Fatalf("the broker got %d of 20", got)
	}
}
