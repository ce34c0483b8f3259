// secret-scanner-go: a KEPM job tool in Go. Scans a directory tree for files that look like
// they hold plain-text secrets and reports counts and paths (never the secrets) to the agent's
// KeeperLogger through kepmlog, via the standard log/slog API.
//
// Started by the agent as `secret-scanner-go --keeper-api-base=https://127.0.0.1:6889 [DIR]`
// with KEEPER_JOB_ID in its environment. Build (libkepmlog installed in PREFIX):
//
//	PKG_CONFIG_PATH=PREFIX/lib/pkgconfig go build -o secret-scanner-go .
package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	kepmlog "example.invalid/kepmlog/bindings/go"
)

var markers = [][]byte{
	[]byte("-----BEGIN RSA PRIVATE KEY-----"), []byte("-----BEGIN OPENSSH PRIVATE KEY-----"),
	[]byte("-----BEGIN PRIVATE KEY-----"), []byte("AKIA"), []byte("password="), []byte("secret_key"),
}

const (
	maxFileBytes = 1 << 20
	maxFiles     = 20000
)

// scanRoot is the first argument that is not a --flag (or the value of --keeper-api-base).
func scanRoot() string {
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		if args[i] == "--keeper-api-base" {
			i++
		} else if !strings.HasPrefix(args[i], "--") {
			return args[i]
		}
	}
	return "."
}

func main() {
	klog, err := kepmlog.New(kepmlog.Options{Source: "SecretScanner", DefaultCategory: "SecretsScan"})
	if err != nil {
		fmt.Fprintf(os.Stderr, "secret-scanner-go: cannot log to KEPM: %v\n", err)
		os.Exit(2)
	}
	log := slog.New(kepmlog.NewHandler(klog, &kepmlog.HandlerOptions{Level: slog.LevelDebug}))
	root := scanRoot()

	log.Info("Scanning for plain-text secrets", "category", "Startup", "root", root)
	_ = klog.Event(map[string]any{"phase": "scan", "status": "started"})
	files, flagged := 0, 0
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			log.Warn("Cannot read "+path, "category", "Access")
			return nil
		}
		if files >= maxFiles {
			return filepath.SkipAll
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Size() > maxFileBytes {
			return nil
		}
		files++
		data, err := os.ReadFile(path)
		if err != nil {
			log.Debug("Skipped "+path, "category", "Access")
			return nil
		}
		for _, m := range markers {
			if bytes.Contains(data, m) {
				flagged++
				log.Warn("Possible secret in "+path, "category", "Finding")
				break
			}
		}
		if files%1000 == 0 {
			_ = klog.Event(map[string]any{"phase": "scan", "files": files})
		}
		return nil
	})
	_ = klog.Event(map[string]any{"phase": "scan", "status": "done", "files": files, "issues": flagged})
	summary := fmt.Sprintf("Scan complete: %d issue(s) detected in %d file(s).", flagged, files)
	// Findings are the report, not a failure of the task: the exit code stays 0.
	if flagged > 0 {
		log.Warn(summary)
	} else {
		log.Info(summary)
	}
	// Deliver everything before the agent records the exit code.
	if err := klog.Shutdown(10 * time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "secret-scanner-go: %v\n", err)
	}
	_ = klog.Close()
}
