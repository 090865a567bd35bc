// Package audit records every provisioning decision: one JSON line per
// decision, to a file and to the structured log. Records name secrets,
// never their values.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"

	"github.com/asps-project/asps/claims"
)

// Decision values.
const (
	Allow = "allow"
	Deny  = "deny"
	// Notice is a record about the audit log itself (an outage of the
	// file, records lost during it).
	Notice = "notice"
)

// Record is one decision.
type Record struct {
	Time      time.Time `json:"time"`
	Service   string    `json:"service"` // "asps.v1.Secrets/GetSecrets", "ratls.GrSecret/GetSecret", …
	Peer      string    `json:"peer"`
	TEE       string    `json:"tee,omitempty"`
	Runtime   string    `json:"runtime,omitempty"`
	MrEnclave string    `json:"mr_enclave,omitempty"`
	MrSigner  string    `json:"mr_signer,omitempty"`
	IsvProdID *uint16   `json:"isv_prod_id,omitempty"`
	IsvSvn    *uint16   `json:"isv_svn,omitempty"`
	MrTd      string    `json:"mr_td,omitempty"`
	Rtmr0     string    `json:"rtmr0,omitempty"`
	Debug     bool      `json:"debug,omitempty"`
	Simulated bool      `json:"simulated,omitempty"`
	TCBStatus string    `json:"tcb_status,omitempty"`
	Advisory  []string  `json:"advisory_ids,omitempty"`
	// CollateralGrace is set when the verdict rested on collateral past
	// its next update, served under the operator's grace period.
	CollateralGrace bool     `json:"collateral_grace,omitempty"`
	App             string   `json:"app,omitempty"`
	Requested       []string `json:"requested"`
	Released        []string `json:"released"`
	Decision        string   `json:"decision"`
	Code            string   `json:"code,omitempty"` // gRPC code of a refusal
	// ReasonCode names the failed check from a fixed set ("policy: debug
	// workload not allowed", "quote: no matching TCB level", ...).
	ReasonCode string `json:"reason_code,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// RequestedCount is how many names a peer that was not attested asked
	// for: its names themselves (attacker-chosen bulk) are not recorded.
	RequestedCount int `json:"requested_count,omitempty"`
	// Suppressed counts the refusals like this one (same reason code,
	// peers not attested) that were counted but not recorded one by one
	// since the previous record of that reason.
	Suppressed uint64 `json:"suppressed,omitempty"`
}

// FromClaims fills the identity fields of r from verified claims.
func (r *Record) FromClaims(c *claims.Claims) {
	if c == nil {
		return
	}
	r.TEE = string(c.TEE)
	r.Runtime = c.Runtime
	r.Debug = c.Debug
	r.Simulated = c.Simulated
	r.TCBStatus = c.TCBStatus
	r.Advisory = c.AdvisoryIDs
	if s := c.SGX; s != nil {
		r.MrEnclave, r.MrSigner = s.MrEnclave.String(), s.MrSigner.String()
		r.IsvProdID, r.IsvSvn = &s.IsvProdID, &s.IsvSvn
	}
	if t := c.TDX; t != nil {
		r.MrTd, r.Rtmr0 = t.MrTd.String(), t.Rtmr0.String()
	}
}

// Logger writes records. It is safe for concurrent use; a nil *Logger
// discards records.
type Logger struct {
	mu  sync.Mutex
	w   io.Writer
	c   io.Closer
	log *slog.Logger
	// lost counts records not written since the last successful write;
	// failures counts every failed write.
	lost     uint64
	failures atomic.Uint64
}

// New writes JSON lines to w (nil: none) and a summary to log (nil: none).
func New(w io.Writer, log *slog.Logger) *Logger { return &Logger{w: w, log: log} }

// Rotation bounds the audit file: it is rotated when it reaches MaxSizeMB,
// and rotated files beyond MaxBackups or older than MaxAgeDays are
// removed (lumberjack).
type Rotation struct {
	MaxSizeMB  int  // default 100
	MaxBackups int  // default 10
	MaxAgeDays int  // default 0: no age limit
	Compress   bool // gzip rotated files
}

// DefaultRotation is what Open uses.
var DefaultRotation = Rotation{MaxSizeMB: 100, MaxBackups: 10}

// Open appends JSON lines to the file at path (created 0600), rotated
// with DefaultRotation.
func Open(path string, log *slog.Logger) (*Logger, error) {
	return OpenRotating(path, DefaultRotation, log)
}

// OpenRotating appends JSON lines to the file at path (created 0600),
// rotated and pruned as r says. The file is opened (or created) now, so
// a path that cannot be written is an error at start-up.
func OpenRotating(path string, r Rotation, log *slog.Logger) (*Logger, error) {
	if r.MaxSizeMB <= 0 {
		r.MaxSizeMB = DefaultRotation.MaxSizeMB
	}
	if r.MaxBackups <= 0 {
		r.MaxBackups = DefaultRotation.MaxBackups
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		// lumberjack renames the file it rotates: never a device or FIFO.
		return nil, fmt.Errorf("open audit log: %s is not a regular file", path)
	}
	// Create it 0600 up front (lumberjack keeps an existing file's mode).
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	f.Close()
	lj := &lumberjack.Logger{
		Filename: filepath.Clean(path), MaxSize: r.MaxSizeMB, MaxBackups: r.MaxBackups,
		MaxAge: r.MaxAgeDays, Compress: r.Compress, LocalTime: false,
	}
	return &Logger{w: lj, c: lj, log: log}, nil
}

// Failures returns how many audit writes have failed since start.
func (l *Logger) Failures() uint64 {
	if l == nil {
		return 0
	}
	return l.failures.Load()
}

// Healthy reports whether the last write succeeded.
func (l *Logger) Healthy() bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost == 0
}

// Probe, after a failed write, tries to write a notice that the audit
// log was unwritable and how many records were lost; it returns nil once
// that succeeds (the log works again), and does nothing while the log is
// healthy.
func (l *Logger) Probe() error {
	if l == nil || l.w == nil {
		return nil
	}
	l.mu.Lock()
	lost := l.lost
	l.mu.Unlock()
	if lost == 0 {
		return nil
	}
	return l.write(Record{Service: "audit", Decision: Notice, ReasonCode: "audit: write failed",
		Reason: fmt.Sprintf("the audit log could not be written; %d records were lost", lost)}, false)
}

// Record writes one decision. A failure to write the audit file is
// returned: a caller that cannot audit a release should not release.
func (l *Logger) Record(r Record) error { return l.write(r, true) }

// write writes r; a failure counts as a lost record when lossy.
func (l *Logger) write(r Record, lossy bool) error {
	if l == nil {
		return nil
	}
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	if r.Requested == nil {
		r.Requested = []string{}
	}
	if r.Released == nil {
		r.Released = []string{}
	}
	if l.log != nil {
		level := slog.LevelInfo
		if r.Decision != Allow {
			level = slog.LevelWarn
		}
		l.log.Log(context.Background(), level, "decision", "decision", r.Decision, "service", r.Service, "peer", r.Peer,
			"app", r.App, "tee", r.TEE, "tcb_status", r.TCBStatus, "requested", r.Requested,
			"released", r.Released, "code", r.Code, "reason", r.Reason)
	}
	if l.w == nil {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode audit record: %w", err)
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(b); err != nil {
		if lossy || l.lost == 0 {
			l.lost++
		}
		l.failures.Add(1)
		return fmt.Errorf("write audit record: %w", err)
	}
	l.lost = 0
	return nil
}

// Close closes the file Open opened.
func (l *Logger) Close() error {
	if l == nil || l.c == nil {
		return nil
	}
	return l.c.Close()
}
