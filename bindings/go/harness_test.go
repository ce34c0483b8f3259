package kepmlog

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// devagent runs `kepm-devagent serve` (HTTPS Plugin Settings + TLS Mosquitto) for one test.
type devagent struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	mu      sync.Mutex
	cond    *sync.Cond
	ready   map[string]any
	msgs    []message
	clients []string
	done    bool
}

type message struct {
	Topic   string
	Payload json.RawMessage
}

func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..")
}

func startDevagent(t *testing.T, allow ...string) *devagent {
	t.Helper()
	path := os.Getenv("KEPM_DEVAGENT")
	if path == "" {
		path = filepath.Join(repoRoot(), "target", "debug", "kepm-devagent")
	}
	// --deny-visible: these tests cover kepmlog's handling of a denial it can see (PUBACK
	// 0x87); the agent's usual silent drop is the devagent's own tests' concern.
	args := []string{"serve", "--deny-visible"}
	for _, a := range allow {
		args = append(args, "--allow", a)
	}
	d := &devagent{cmd: exec.Command(path, args...)}
	d.cond = sync.NewCond(&d.mu)
	d.cmd.Env = append(os.Environ(), "TMPDIR=/tmp")
	d.cmd.Stderr = os.Stderr
	var err error
	if d.stdin, err = d.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("cannot start %s (set KEPM_DEVAGENT): %v", path, err)
	}
	go d.read(out)
	t.Cleanup(func() {
		_, _ = io.WriteString(d.stdin, "quit\n")
		_ = d.stdin.Close()
		_ = d.cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.ready == nil && !d.done {
		if time.Now().After(deadline) {
			t.Fatal("the devagent did not get ready")
		}
		d.waitLocked(deadline)
	}
	if d.ready == nil {
		t.Fatal("the devagent exited before it was ready")
	}
	return d
}

// waitLocked waits for a change or the deadline (sync.Cond has no timeout).
func (d *devagent) waitLocked(deadline time.Time) {
	timer := time.AfterFunc(time.Until(deadline), func() {
		d.mu.Lock()
		d.cond.Broadcast()
		d.mu.Unlock()
	})
	d.cond.Wait()
	timer.Stop()
}

func (d *devagent) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var line map[string]json.RawMessage
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		var event, topic, client string
		_ = json.Unmarshal(line["event"], &event)
		d.mu.Lock()
		switch event {
		case "ready":
			var ready map[string]any
			_ = json.Unmarshal(sc.Bytes(), &ready)
			d.ready = ready
		case "message":
			_ = json.Unmarshal(line["topic"], &topic)
			d.msgs = append(d.msgs, message{Topic: topic, Payload: line["payload"]})
		case "client":
			_ = json.Unmarshal(line["client_id"], &client)
			d.clients = append(d.clients, client)
		}
		d.cond.Broadcast()
		d.mu.Unlock()
	}
	d.mu.Lock()
	d.done = true
	d.cond.Broadcast()
	d.mu.Unlock()
}

func (d *devagent) apiBase() string { return d.ready["api_base"].(string) }
func (d *devagent) ca() string      { return d.ready["ca"].(string) }

// messages returns the messages on topic, waiting until there are at least n (or 20 s).
func (d *devagent) messages(topic string, n int) []message {
	deadline := time.Now().Add(20 * time.Second)
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		var got []message
		for _, m := range d.msgs {
			if m.Topic == topic {
				got = append(got, m)
			}
		}
		if len(got) >= n || d.done || time.Now().After(deadline) {
			return got
		}
		d.waitLocked(deadline)
	}
}

// connections returns how many times the broker saw clientID connect, after waiting until it
// saw it at least atLeast times (or 20 s) and a moment more: the connection lines come from
// the broker's log and may trail the messages.
func (d *devagent) connections(clientID string, atLeast int) int {
	count := func() (n int) {
		for _, c := range d.clients {
			if c == clientID {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	d.mu.Lock()
	for count() < atLeast && !d.done && time.Now().Before(deadline) {
		d.waitLocked(deadline)
	}
	d.mu.Unlock()
	time.Sleep(500 * time.Millisecond)
	d.mu.Lock()
	defer d.mu.Unlock()
	return count()
}

// clientsSeen lists every client id the broker saw connect, in order.
func (d *devagent) clientsSeen() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.clients...)
}

// metaData decodes MetaData of a KeeperLogger payload.
func metaData(t *testing.T, m message) map[string]any {
	t.Helper()
	var p struct {
		ID             string         `json:"Id"`
		Version        int            `json:"Version"`
		RespondToTopic *string        `json:"RespondToTopic"`
		MetaData       map[string]any `json:"MetaData"`
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		t.Fatalf("payload %s: %v", m.Payload, err)
	}
	if p.Version != 1 || p.RespondToTopic != nil || len(p.ID) != 36 {
		t.Errorf("envelope %s", m.Payload)
	}
	return p.MetaData
}
