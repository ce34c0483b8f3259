// Package kepmlog logs from a Keeper Privilege Manager (KEPM) job task to the agent's
// KeeperLogger topic over TLS MQTT v5, through libkepmlog's C ABI (cgo).
//
// Logging never blocks and does no I/O on the caller's goroutine: records go to a bounded
// queue drained by the library's own worker thread. Call Close (or Shutdown) before the
// task exits so the agent sees every record.
//
//	log, err := kepmlog.New(kepmlog.Options{Source: "SecretScanner"})
//	if err != nil { ... }            // the error names the fix (e.g. declare mqttTopics)
//	defer log.Close()
//	log.Info("SecretsScan", "Scan complete: 0 issues detected.")
//
// Run by hand, without KEEPER_JOB_ID, New fails with ErrMissingJobID (naming the fix); with
// Options.Fallback = FallbackStderr (or KEPMLOG_FALLBACK=stderr) it creates a logger that writes
// every record as one text line on stderr instead. Records still undelivered when Shutdown or
// Close reaches its deadline are written to stderr the same way unless NoUndeliveredToStderr.
//
// Build: the package links libkepmlog's static library through pkg-config (kepmlog-static),
// so binaries are one file. Against a prebuilt SDK archive, extracted anywhere (no Rust, no
// repository target/ needed):
//
//	tar xzf kepmlog-VERSION-x86_64-unknown-linux-gnu.tar.gz
//	PKG_CONFIG_PATH=$PWD/kepmlog-VERSION-x86_64-unknown-linux-gnu/lib/pkgconfig go build ./...
//
// or without pkg-config: CGO_CFLAGS=-I$SDK/include CGO_LDFLAGS="$SDK/lib/libkepmlog.a -lm ..."
// with the native libraries the SDK's README lists, and PKG_CONFIG=/bin/true. From a
// checkout: make -C ffi install PREFIX=... and PKG_CONFIG_PATH=PREFIX/lib/pkgconfig.
package kepmlog

/*
#cgo pkg-config: kepmlog-static
#include <stdlib.h>
#include <kepmlog.h>
*/
import "C"

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Level is one of the six KeeperLogger levels; its value is the wire value (MetaData.LogLevel).
// LevelVerbose is the least severe level although its number is the highest.
type Level int

// The six levels, with the numbers the agent expects.
const (
	LevelDebug    Level = C.KEPMLOG_LEVEL_DEBUG
	LevelInfo     Level = C.KEPMLOG_LEVEL_INFO
	LevelWarning  Level = C.KEPMLOG_LEVEL_WARNING
	LevelError    Level = C.KEPMLOG_LEVEL_ERROR
	LevelCritical Level = C.KEPMLOG_LEVEL_CRITICAL
	LevelVerbose  Level = C.KEPMLOG_LEVEL_VERBOSE
)

// Status is the library's status code (kepmlog_status).
type Status int

// Status codes; see include/kepmlog.h.
const (
	StatusOK              Status = C.KEPMLOG_OK
	StatusNullArgument    Status = C.KEPMLOG_ERR_NULL_ARGUMENT
	StatusInvalidUTF8     Status = C.KEPMLOG_ERR_INVALID_UTF8
	StatusInvalidArgument Status = C.KEPMLOG_ERR_INVALID_ARGUMENT
	StatusMissingJobID    Status = C.KEPMLOG_ERR_MISSING_JOB_ID
	StatusInvalidJobID    Status = C.KEPMLOG_ERR_INVALID_JOB_ID
	StatusEmptyMessage    Status = C.KEPMLOG_ERR_EMPTY_MESSAGE
	StatusInvalidLevel    Status = C.KEPMLOG_ERR_INVALID_LEVEL
	StatusInvalidEvent    Status = C.KEPMLOG_ERR_INVALID_EVENT
	StatusQueueFull       Status = C.KEPMLOG_ERR_QUEUE_FULL
	StatusShutDown        Status = C.KEPMLOG_ERR_SHUT_DOWN
	StatusForked          Status = C.KEPMLOG_ERR_FORKED
	StatusTimeout         Status = C.KEPMLOG_ERR_TIMEOUT
	StatusDenied          Status = C.KEPMLOG_ERR_DENIED
	StatusPanic           Status = C.KEPMLOG_ERR_PANIC
	StatusInternal        Status = C.KEPMLOG_ERR_INTERNAL
	StatusUndeliverable   Status = C.KEPMLOG_ERR_UNDELIVERABLE
)

// String returns the C name of the status, e.g. "KEPMLOG_ERR_QUEUE_FULL".
func (s Status) String() string { return C.GoString(C.kepmlog_status_name(C.int(s))) }

// Error is what every failing call returns: the status, the library's text (which names the
// fix) and, for Flush and Shutdown, how many records were not delivered.
type Error struct {
	Status      Status
	Msg         string
	Undelivered uint64
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return "kepmlog: " + e.Status.String()
	}
	return "kepmlog: " + e.Msg
}

// Is makes errors.Is(err, kepmlog.ErrQueueFull) and friends match on the status.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Msg == "" && t.Status == e.Status
}

// Sentinels for errors.Is.
var (
	ErrInvalidUTF8     = &Error{Status: StatusInvalidUTF8}
	ErrInvalidArgument = &Error{Status: StatusInvalidArgument}
	ErrMissingJobID    = &Error{Status: StatusMissingJobID}
	ErrInvalidJobID    = &Error{Status: StatusInvalidJobID}
	ErrEmptyMessage    = &Error{Status: StatusEmptyMessage}
	ErrInvalidLevel    = &Error{Status: StatusInvalidLevel}
	ErrInvalidEvent    = &Error{Status: StatusInvalidEvent}
	// ErrQueueFull: the record was dropped and counted (Stats.Dropped); not fatal.
	ErrQueueFull = &Error{Status: StatusQueueFull}
	ErrShutDown  = &Error{Status: StatusShutDown}
	ErrForked    = &Error{Status: StatusForked}
	ErrTimeout   = &Error{Status: StatusTimeout}
	ErrDenied    = &Error{Status: StatusDenied}
	// ErrUndeliverable: records given up since the last flush for another reason than the
	// deadline (larger than the broker's Maximum Packet Size); never retried.
	ErrUndeliverable = &Error{Status: StatusUndeliverable}
)

// Options configure New. Zero values mean the job defaults the agent provides.
type Options struct {
	// Source is MetaData.Source, the tool's name in the operator's logs. Default: executable name.
	Source string
	// DefaultCategory is used when a call passes "" as category. Default "General".
	DefaultCategory string
	// JobID defaults to the KEEPER_JOB_ID environment variable set by the agent.
	JobID string
	// Token is the short binary name in the MQTT client id. Default: the executable name.
	Token string
	// APIBase defaults to --keeper-api-base in Args, else https://127.0.0.1:6889.
	APIBase string
	// CABundle is a PEM file of CAs to trust; without it verification is skipped (loopback only).
	CABundle string
	// BrokerHost and BrokerPort skip Plugin Settings discovery when both are set.
	BrokerHost string
	BrokerPort uint16
	// QueueCapacity in records (default 65536).
	QueueCapacity int
	// BlockWhenFull > 0 makes logging wait up to this long for room instead of dropping.
	BlockWhenFull time.Duration
	// EventTopic defaults to Jobs/{jobId}/events; it must be in allowedPublications.
	EventTopic string
	// SettingsTimeout of the Plugin Settings request (default 3s).
	SettingsTimeout time.Duration
	// DropTimeout bounds the delivery wait of a logger collected without Close (default 5s).
	DropTimeout time.Duration
	// Args to read --keeper-api-base and the executable name from. Default: os.Args.
	Args []string
	// Quiet turns off the library's own diagnostics on stderr.
	Quiet bool
	// Fallback says what New does without a job id: FallbackError (fail with
	// ErrMissingJobID, which names the fix) or FallbackStderr (create the logger anyway and
	// write every record as a text line on stderr, which the agent captures as the task's
	// output). Default "": the KEPMLOG_FALLBACK environment variable, else FallbackError.
	Fallback Fallback
	// NoUndeliveredToStderr keeps Shutdown/Close from writing the records still undelivered
	// at their deadline to stderr as text lines (written by default).
	NoUndeliveredToStderr bool
	// SpoolDir turns on the crash-safe spool: every accepted record is also written to a file
	// under this directory before the log call returns, and what a killed run, or one whose
	// broker never came up, did not deliver is sent by the job's next run. Default: the
	// KEPMLOG_SPOOL_DIR environment variable, else no spool. The directory must be this
	// user's and writable by nobody else (created 0700 when missing).
	SpoolDir string
}

// Fallback is what New does when there is no job id (Options.Fallback).
type Fallback string

// The two fallbacks.
const (
	FallbackError  Fallback = "error"
	FallbackStderr Fallback = "stderr"
)

// Stats are a logger's counters: Accepted = Delivered + Denied + Failed + Pending; Dropped
// records were never accepted.
type Stats struct {
	Accepted, Delivered, Dropped, Denied, Failed, Pending, Reconnects uint64
	Connected                                                         bool
	// Printed counts records (and events) written to stderr as text lines: with
	// FallbackStderr and no job id every one (none is then Accepted); otherwise the
	// undelivered ones written at shutdown (also counted in Failed).
	Printed uint64
	// Recovered counts records an earlier run of the job left in the spool, sent by this
	// logger first (part of Accepted); SpoolDropped, records the spool's cap removed from disk
	// before they were delivered (a crash would lose them). Both 0 without Options.SpoolDir.
	Recovered, SpoolDropped uint64
}

// Logger is safe for concurrent use by many goroutines.
type Logger struct {
	mu       sync.RWMutex // Close takes it exclusively, so no call races the free.
	p        *C.kepmlog_logger
	clientID string
}

// DefaultCloseTimeout bounds how long Close waits for delivery: the library's one default
// for every binding (KEPMLOG_DEFAULT_CLOSE_TIMEOUT_MS).
const DefaultCloseTimeout = C.KEPMLOG_DEFAULT_CLOSE_TIMEOUT_MS * time.Millisecond

// call runs one C call on a locked OS thread, so kepmlog_last_error (thread-local) belongs to it.
func call(f func() C.enum_kepmlog_status) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if s := f(); s != C.KEPMLOG_OK {
		return &Error{Status: Status(s), Msg: C.GoString(C.kepmlog_last_error())}
	}
	return nil
}

// cstr copies s for C; the caller frees it. Go strings may hold NUL, which C cannot carry.
func cstr(s, what string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, &Error{Status: StatusInvalidArgument,
			Msg: what + " contains a NUL byte: remove it (C strings end at NUL)"}
	}
	return C.CString(s), nil
}

func millis(d time.Duration) C.uint64_t {
	if d < 0 {
		return 0
	}
	return C.uint64_t(d / time.Millisecond)
}

// New creates a logger and starts its worker; it returns at once (discovery and the TLS
// connection happen in the background, records logged meanwhile are queued).
func New(opts Options) (*Logger, error) {
	var o *C.kepmlog_options
	if err := call(func() C.enum_kepmlog_status { return C.kepmlog_options_new(&o) }); err != nil {
		return nil, err
	}
	defer C.kepmlog_options_free(&o)

	type setter struct {
		value, what string
		set         func(*C.kepmlog_options, *C.char) C.enum_kepmlog_status
	}
	setters := []setter{
		{opts.Source, "Source", func(o *C.kepmlog_options, v *C.char) C.enum_kepmlog_status { return C.kepmlog_options_set_source(o, v) }},
		{opts.DefaultCategory, "DefaultCategory", func(o *C.kepmlog_options, v *C.char) C.enum_kepmlog_status {
			return C.kepmlog_options_set_default_category(o, v)
		}},
		{opts.JobID, "JobID", func(o *C.kepmlog_options, v *C.char) C.enum_kepmlog_status { return C.kepmlog_options_set_job_id(o, v) }},
		{opts.Token, "Token", func(o *C.kepmlog_options, v *C.char) C.enum_kepmlog_status { return C.kepmlog_options_set_token(o, v) }},
		{opts.APIBase, "APIBase", func(o *C.kepmlog_options, v *C.char) C.enum_kepmlog_status {
			return C.kepmlog_options_set_api_base(o, v)
		}},
		{opts.CABundle, "CABundle", func(o *C.kepmlog_options, v *C.char) C.enum_kepmlog_status {
			return C.kepmlog_options_set_ca_bundle(o, v)
		}},
		{opts.EventTopic, "EventTopic", func(o *C.kepmlog_options, v *C.char) C.enum_kepmlog_status {
			return C.kepmlog_options_set_event_topic(o, v)
		}},
		{opts.SpoolDir, "SpoolDir", func(o *C.kepmlog_options, v *C.char) C.enum_kepmlog_status {
			return C.kepmlog_options_set_spool_dir(o, v)
		}},
	}
	for _, s := range setters {
		if s.value == "" {
			continue
		}
		v, err := cstr(s.value, s.what)
		if err != nil {
			return nil, err
		}
		err = call(func() C.enum_kepmlog_status { return s.set(o, v) })
		C.free(unsafe.Pointer(v))
		if err != nil {
			return nil, err
		}
	}
	if opts.BrokerHost != "" || opts.BrokerPort != 0 {
		host, err := cstr(opts.BrokerHost, "BrokerHost")
		if err != nil {
			return nil, err
		}
		err = call(func() C.enum_kepmlog_status {
			return C.kepmlog_options_set_broker(o, host, C.uint16_t(opts.BrokerPort))
		})
		C.free(unsafe.Pointer(host))
		if err != nil {
			return nil, err
		}
	}
	if opts.QueueCapacity < 0 {
		return nil, &Error{Status: StatusInvalidArgument, Msg: fmt.Sprintf("QueueCapacity %d: pass 0 (default) or more", opts.QueueCapacity)}
	}
	if opts.QueueCapacity > 0 {
		if err := call(func() C.enum_kepmlog_status {
			return C.kepmlog_options_set_queue_capacity(o, C.size_t(opts.QueueCapacity))
		}); err != nil {
			return nil, err
		}
	}
	if opts.BlockWhenFull > 0 {
		if err := call(func() C.enum_kepmlog_status {
			return C.kepmlog_options_set_overflow(o, C.KEPMLOG_OVERFLOW_BLOCK, millis(opts.BlockWhenFull))
		}); err != nil {
			return nil, err
		}
	}
	if opts.SettingsTimeout > 0 {
		if err := call(func() C.enum_kepmlog_status {
			return C.kepmlog_options_set_settings_timeout(o, millis(opts.SettingsTimeout))
		}); err != nil {
			return nil, err
		}
	}
	if opts.DropTimeout > 0 {
		if err := call(func() C.enum_kepmlog_status {
			return C.kepmlog_options_set_drop_timeout(o, millis(opts.DropTimeout))
		}); err != nil {
			return nil, err
		}
	}
	if opts.Quiet {
		if err := call(func() C.enum_kepmlog_status { return C.kepmlog_options_set_stderr_diagnostics(o, false) }); err != nil {
			return nil, err
		}
	}
	if opts.Fallback != "" {
		name := C.CString(string(opts.Fallback))
		defer C.free(unsafe.Pointer(name))
		if err := call(func() C.enum_kepmlog_status { return C.kepmlog_options_set_fallback_name(o, name) }); err != nil {
			return nil, err
		}
	}
	if opts.NoUndeliveredToStderr {
		if err := call(func() C.enum_kepmlog_status { return C.kepmlog_options_set_undelivered_to_stderr(o, false) }); err != nil {
			return nil, err
		}
	}
	args := opts.Args
	if args == nil {
		args = os.Args
	}
	if err := setArgs(o, args); err != nil {
		return nil, err
	}

	l := &Logger{}
	if err := call(func() C.enum_kepmlog_status { return C.kepmlog_logger_new(o, &l.p) }); err != nil {
		return nil, err
	}
	var id *C.char
	if err := call(func() C.enum_kepmlog_status { return C.kepmlog_logger_client_id(l.p, &id) }); err == nil {
		l.clientID = C.GoString(id)
	}
	// A logger dropped without Close still delivers what it can (bounded by DropTimeout).
	runtime.SetFinalizer(l, func(l *Logger) { l.free() })
	return l, nil
}

func setArgs(o *C.kepmlog_options, args []string) error {
	if len(args) == 0 {
		return nil
	}
	cargs := C.malloc(C.size_t(len(args)) * C.size_t(unsafe.Sizeof(uintptr(0))))
	defer C.free(cargs)
	slots := unsafe.Slice((**C.char)(cargs), len(args))
	for i, a := range args {
		// Arguments are only read for --keeper-api-base and the executable name: a NUL cannot
		// be in a real argument, so cut there rather than fail.
		if n := strings.IndexByte(a, 0); n >= 0 {
			a = a[:n]
		}
		slots[i] = C.CString(a)
	}
	defer func() {
		for _, p := range slots {
			C.free(unsafe.Pointer(p))
		}
	}()
	return call(func() C.enum_kepmlog_status {
		return C.kepmlog_options_set_args(o, C.int(len(args)), (**C.char)(cargs))
	})
}

var errClosed = &Error{Status: StatusShutDown, Msg: "logger is closed: create a new logger to log again"}

// with runs f with the live handle, holding the read lock so Close cannot free it meanwhile.
func (l *Logger) with(f func(p *C.kepmlog_logger) error) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.p == nil {
		return errClosed
	}
	return f(l.p)
}

// Log logs one record; category "" uses the default category, message must be non-empty.
// ErrQueueFull means this record was dropped and counted; it is not fatal.
func (l *Logger) Log(level Level, category, message string) error {
	return l.LogWith(level, category, message, "", "")
}

// LogWith logs one record with a correlation id and a context (either may be "").
func (l *Logger) LogWith(level Level, category, message, correlationID, context string) error {
	strs := [4]string{category, message, correlationID, context}
	names := [4]string{"category", "message", "correlation id", "context"}
	var cs [4]*C.char
	for i, s := range strs {
		c, err := cstr(s, names[i])
		if err != nil {
			for _, p := range cs[:i] {
				C.free(unsafe.Pointer(p))
			}
			return err
		}
		cs[i] = c
	}
	defer func() {
		for _, p := range cs {
			C.free(unsafe.Pointer(p))
		}
	}()
	return l.with(func(p *C.kepmlog_logger) error {
		return call(func() C.enum_kepmlog_status {
			return C.kepmlog_log_with(p, C.int(level), cs[0], cs[1], cs[2], cs[3])
		})
	})
}

// Debug logs at LevelDebug.
func (l *Logger) Debug(category, message string) error { return l.Log(LevelDebug, category, message) }

// Info logs at LevelInfo.
func (l *Logger) Info(category, message string) error { return l.Log(LevelInfo, category, message) }

// Warning logs at LevelWarning.
func (l *Logger) Warning(category, message string) error {
	return l.Log(LevelWarning, category, message)
}

// Error logs at LevelError.
func (l *Logger) Error(category, message string) error { return l.Log(LevelError, category, message) }

// Critical logs at LevelCritical.
func (l *Logger) Critical(category, message string) error {
	return l.Log(LevelCritical, category, message)
}

// Verbose logs at LevelVerbose (the least severe level).
func (l *Logger) Verbose(category, message string) error {
	return l.Log(LevelVerbose, category, message)
}

// Event publishes a job progress event to the event topic: v must marshal to a JSON object.
func (l *Logger) Event(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return &Error{Status: StatusInvalidEvent, Msg: "cannot marshal the event: " + err.Error()}
	}
	return l.EventJSON(string(b))
}

// EventJSON publishes one JSON object given as text to the event topic.
func (l *Logger) EventJSON(js string) error {
	c, err := cstr(js, "event JSON")
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(c))
	return l.with(func(p *C.kepmlog_logger) error {
		return call(func() C.enum_kepmlog_status { return C.kepmlog_event(p, c) })
	})
}

// Flush waits until every record logged before the call is acknowledged, or the timeout.
// ErrTimeout (Undelivered set) leaves the rest queued; ErrDenied reports publishes the broker
// refused visibly (PUBACK 0x87). The agent's broker usually denies silently (success, the
// record gone), so a nil error proves only that nothing was refused visibly: kepm-devagent
// lint and run find an undeclared topic.
func (l *Logger) Flush(timeout time.Duration) error {
	return l.with(func(p *C.kepmlog_logger) error {
		var n C.uint64_t
		err := call(func() C.enum_kepmlog_status { return C.kepmlog_flush(p, millis(timeout), &n) })
		var e *Error
		if errors.As(err, &e) {
			e.Undelivered = uint64(n)
		}
		return err
	})
}

// Shutdown flushes until the timeout, disconnects and stops the worker; idempotent. Later
// logging returns ErrShutDown. Records not delivered by then are reported in the error.
func (l *Logger) Shutdown(timeout time.Duration) error {
	return l.with(func(p *C.kepmlog_logger) error {
		var n C.uint64_t
		err := call(func() C.enum_kepmlog_status { return C.kepmlog_shutdown(p, millis(timeout), &n) })
		var e *Error
		if errors.As(err, &e) {
			e.Undelivered = uint64(n)
		}
		return err
	})
}

// Close shuts down (up to DefaultCloseTimeout) and frees the logger. Idempotent; later calls
// return nil, logging afterwards returns ErrShutDown.
func (l *Logger) Close() error {
	l.mu.RLock()
	open := l.p != nil
	l.mu.RUnlock()
	var err error
	if open {
		err = l.Shutdown(DefaultCloseTimeout)
	}
	l.free()
	return err
}

func (l *Logger) free() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.p != nil {
		C.kepmlog_logger_free(&l.p)
		l.p = nil
	}
}

// Stats returns the logger's counters (also after Shutdown; ErrShutDown after Close).
func (l *Logger) Stats() (Stats, error) {
	var st C.kepmlog_logger_stats
	var printed, recovered, spoolDropped C.uint64_t
	err := l.with(func(p *C.kepmlog_logger) error {
		if err := call(func() C.enum_kepmlog_status { return C.kepmlog_stats(p, &st) }); err != nil {
			return err
		}
		if err := call(func() C.enum_kepmlog_status { return C.kepmlog_logger_spool_counts(p, &recovered, &spoolDropped) }); err != nil {
			return err
		}
		return call(func() C.enum_kepmlog_status { return C.kepmlog_logger_printed(p, &printed, nil) })
	})
	if err != nil {
		return Stats{}, err
	}
	return Stats{
		Accepted: uint64(st.accepted), Delivered: uint64(st.delivered), Dropped: uint64(st.dropped),
		Denied: uint64(st.denied), Failed: uint64(st.failed), Pending: uint64(st.pending),
		Reconnects: uint64(st.reconnects), Connected: bool(st.connected), Printed: uint64(printed),
		Recovered: uint64(recovered), SpoolDropped: uint64(spoolDropped),
	}, nil
}

// WritesToStderr reports whether records go to stderr instead of KeeperLogger
// (FallbackStderr and no job id).
func (l *Logger) WritesToStderr() bool {
	var printed C.uint64_t
	var on C.bool
	err := l.with(func(p *C.kepmlog_logger) error {
		return call(func() C.enum_kepmlog_status { return C.kepmlog_logger_printed(p, &printed, &on) })
	})
	return err == nil && bool(on)
}

// ClientID is the MQTT client id, {jobId}_{token}_{pid}.
func (l *Logger) ClientID() string { return l.clientID }

// Version is the version of the linked libkepmlog.
func Version() string { return C.GoString(C.kepmlog_version()) }
