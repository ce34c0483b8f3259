package kepmlog

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Loggers of one process with the same client id ({jobId}_{token}_{pid}) and broker share ONE
// broker connection; each keeps its own Source, queue, stats, flush and shutdown.

const sharedEach = 300

// bySource returns the messages of the KeeperLogger records per MetaData.Source, in arrival
// order, once the broker has at least n records.
func bySource(t *testing.T, d *devagent, n int) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	for _, m := range d.messages("KeeperLogger", n) {
		md := metaData(t, m)
		source, _ := md["Source"].(string)
		message, _ := md["Message"].(string)
		got[source] = append(got[source], message)
	}
	return got
}

func numbered(n int, format string) []string {
	out := make([]string, n)
	for k := range out {
		out[k] = fmt.Sprintf(format, k)
	}
	return out
}

func checkStats(t *testing.T, name string, l *Logger, want uint64) {
	t.Helper()
	st, err := l.Stats()
	if err != nil {
		t.Fatalf("%s: Stats: %v", name, err)
	}
	if st.Accepted != want || st.Delivered != want || st.Dropped != 0 || st.Pending != 0 || st.Reconnects != 0 || !st.Connected {
		t.Errorf("%s: stats %+v, want %d accepted and delivered, 0 reconnects, connected", name, st, want)
	}
}

func testLoggersShareOneConnection(t *testing.T, n int) {
	d := startDevagent(t, "KeeperLogger")
	loggers := make([]*Logger, n)
	for i := range loggers {
		loggers[i] = newLogger(t, d, Options{Source: fmt.Sprintf("Tool%d", i)})
	}
	clientID := loggers[0].ClientID()
	if want := fmt.Sprintf("%s_GoTest_%d", jobID, os.Getpid()); clientID != want {
		t.Fatalf("client id %s, want %s", clientID, want)
	}
	for i, l := range loggers {
		if l.ClientID() != clientID {
			t.Fatalf("logger %d: client id %s, logger 0: %s", i, l.ClientID(), clientID)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, l := range loggers {
		wg.Add(1)
		go func(i int, l *Logger) {
			defer wg.Done()
			for k := 0; k < sharedEach; k++ {
				if err := l.Info("Shared", fmt.Sprintf("%d-%d", i, k)); err != nil {
					errs <- fmt.Errorf("logger %d record %d: %w", i, k, err)
					return
				}
			}
		}(i, l)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, l := range loggers {
		if err := l.Flush(30 * time.Second); err != nil {
			t.Fatalf("logger %d: Flush: %v", i, err)
		}
		checkStats(t, fmt.Sprintf("logger %d", i), l, sharedEach)
	}
	got := bySource(t, d, n*sharedEach)
	total := 0
	for _, v := range got {
		total += len(v)
	}
	if total != n*sharedEach {
		t.Errorf("broker received %d records, want %d", total, n*sharedEach)
	}
	for i := range loggers {
		if mine := got[fmt.Sprintf("Tool%d", i)]; !reflect.DeepEqual(mine, numbered(sharedEach, fmt.Sprintf("%d-%%d", i))) {
			t.Errorf("logger %d: %d records, not its own %d in order", i, len(mine), sharedEach)
		}
	}
	conns := d.connections(clientID, 1)
	t.Logf("%d loggers: %d connection(s) of %s", n, conns, clientID)
	if conns != 1 {
		t.Errorf("broker saw %s connect %d times, want 1: %v", clientID, conns, d.clientsSeen())
	}
	for i, l := range loggers {
		if err := l.Shutdown(30 * time.Second); err != nil {
			t.Errorf("logger %d: Shutdown: %v", i, err)
		}
	}
}

func TestTwoLoggersShareOneConnection(t *testing.T)   { testLoggersShareOneConnection(t, 2) }
func TestEightLoggersShareOneConnection(t *testing.T) { testLoggersShareOneConnection(t, 8) }

// A is shut down while B logs on a goroutine; B's records after that all arrive over the one
// connection. A logger created later (C) joins it; with every logger gone the next one (D)
// connects anew.
func TestShuttingOneLoggerDownLeavesTheOtherLogging(t *testing.T) {
	d := startDevagent(t, "KeeperLogger")
	a := newLogger(t, d, Options{Source: "LeaveA"})
	b := newLogger(t, d, Options{Source: "LeaveB"})
	clientID := b.ClientID()
	if a.ClientID() != clientID {
		t.Fatalf("client ids %s and %s", a.ClientID(), clientID)
	}
	for k := 0; k < 50; k++ {
		if err := a.Info("Leave", fmt.Sprintf("a %d", k)); err != nil {
			t.Fatal(err)
		}
	}
	var progress atomic.Int64
	stop := make(chan struct{})
	writerErr := make(chan error, 1)
	go func() {
		// Paced, so that B is logging before, during and after A's shutdown.
		k := 0
		for {
			select {
			case <-stop:
				if k >= sharedEach {
					writerErr <- nil
					return
				}
			default:
			}
			if err := b.Info("Leave", fmt.Sprintf("b %d", k)); err != nil {
				writerErr <- fmt.Errorf("b record %d: %w", k, err)
				return
			}
			k++
			progress.Store(int64(k))
			time.Sleep(100 * time.Microsecond)
		}
	}()
	waitProgress := func(n int64) {
		deadline := time.Now().Add(30 * time.Second)
		for progress.Load() < n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	waitProgress(sharedEach / 4)
	before := progress.Load()
	if err := a.Shutdown(30 * time.Second); err != nil {
		t.Fatalf("A: Shutdown: %v", err)
	}
	if err := a.Info("Leave", "a after"); !errors.Is(err, ErrShutDown) {
		t.Errorf("A after shutdown: %v, want ErrShutDown", err)
	}
	atShutdown := progress.Load()
	waitProgress(atShutdown + 200) // at least 200 more once A's shutdown has returned
	close(stop)
	if err := <-writerErr; err != nil {
		t.Fatal(err)
	}
	total := int(progress.Load())
	t.Logf("B logged records %d..%d during A's shutdown, %d in all", before, atShutdown, total)
	if int64(total) < atShutdown+200 {
		t.Fatalf("B logged %d records, want at least %d", total, atShutdown+200)
	}
	if err := b.Flush(30 * time.Second); err != nil {
		t.Fatalf("B: Flush: %v", err)
	}
	sa, err := a.Stats()
	if err != nil || sa.Accepted != 50 || sa.Delivered != 50 || sa.Failed != 0 || sa.Pending != 0 {
		t.Errorf("A stats %+v (%v), want 50 delivered", sa, err)
	}
	checkStats(t, "B", b, uint64(total))
	got := bySource(t, d, 50+total)
	if !reflect.DeepEqual(got["LeaveA"], numbered(50, "a %d")) {
		t.Errorf("A: %d records at the broker, not its 50 in order", len(got["LeaveA"]))
	}
	if !reflect.DeepEqual(got["LeaveB"], numbered(total, "b %d")) {
		t.Errorf("B: %d records at the broker, not its %d in order", len(got["LeaveB"]), total)
	}

	// A logger created after A's shutdown joins the same connection.
	c := newLogger(t, d, Options{Source: "LeaveC"})
	if err := c.Info("Leave", "c 0"); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	checkStats(t, "C", c, 1)
	conns := d.connections(clientID, 1)
	t.Logf("A shut down, B and C logging: %d connection(s) of %s", conns, clientID)
	if conns != 1 {
		t.Errorf("broker saw %s connect %d times, want 1: %v", clientID, conns, d.clientsSeen())
	}

	// With every logger shut down the connection closes; the next logger opens a new one.
	if err := b.Shutdown(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	dl := newLogger(t, d, Options{Source: "LeaveD"})
	if err := dl.Info("Leave", "d 0"); err != nil {
		t.Fatal(err)
	}
	if err := dl.Flush(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := bySource(t, d, 50+total+2)["LeaveD"]; !reflect.DeepEqual(got, []string{"d 0"}) {
		t.Errorf("D: %v at the broker", got)
	}
	conns = d.connections(clientID, 2)
	t.Logf("after every logger shut down, a new one: %d connection(s) of %s", conns, clientID)
	if conns != 2 {
		t.Errorf("broker saw %s connect %d times, want 2: %v", clientID, conns, d.clientsSeen())
	}
}
