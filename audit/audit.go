// Package audit records every provisioning decision: one JSON line per
// decision, to a file and to the structured log. Records name secrets,
// never their values.
package audit

import (
	"context"
	"encoding/json"
	"errors"
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
	// ConfigID and ConfigSvn: the SGX fields a policy can select besides
	// the ones above.
	ConfigID  string  `json:"config_id,omitempty"`
	ConfigSvn *uint16 `json:"config_svn,omitempty"`
	// The TD's measurements: every one a TDX policy can select, so the
	// record says which firmware, kernel and command line received what.
	MrTd          string   `json:"mr_td,omitempty"`
	Rtmr0         string   `json:"rtmr0,omitempty"`
	Rtmr1         string   `json:"rtmr1,omitempty"`
	Rtmr2         string   `json:"rtmr2,omitempty"`
	Rtmr3         string   `json:"rtmr3,omitempty"`
	MrConfigID    string   `json:"mr_config_id,omitempty"`
	MrOwner       string   `json:"mr_owner,omitempty"`
	MrOwnerConfig string   `json:"mr_owner_config,omitempty"`
	MrServiceTd   string   `json:"mr_servicetd,omitempty"`
	TdAttributes  string   `json:"td_attributes,omitempty"`
	Debug         bool     `json:"debug,omitempty"`
	Simulated     bool     `json:"simulated,omitempty"`
	TCBStatus     string   `json:"tcb_status,omitempty"`
	Advisory      []string `json:"advisory_ids,omitempty"`
	// CollateralGrace is set when the verdict rested on collateral past
	// its next update, served under the operator's grace period.
	CollateralGrace bool   `json:"collateral_grace,omitempty"`
	App             string `json:"app,omitempty"`
	// PolicySHA256 is the version of the policy the request was judged
	// by: the SHA-256 of the policy file's bytes (policy.Policy.Digest).
	PolicySHA256 string   `json:"policy_sha256,omitempty"`
	Requested    []string `json:"requested"`
	Released     []string `json:"released"`
	Decision     string   `json:"decision"`
	Code         string   `json:"code,omitempty"` // gRPC code of a refusal
	// ReasonCode names the failed check from a fixed set ("policy: debug
	// workload not allowed", "quote: no matching TCB level", ...).
	ReasonCode string `json:"reason_code,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// RequestedCount is how many names were asked for when the record does
	// not list them all: a peer no app recognises (its names, attacker-
	// chosen bulk, are not recorded), or a recognised workload asking for
	// more names than its refusal record keeps.
	RequestedCount int `json:"requested_count,omitempty"`
	// Suppressed counts the refusals like this one (same reason code and
	// peers no app recognises, or the same app) that were counted but not
	// recorded one by one since the previous such record.
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
		if len(s.ConfigID) > 0 {
			r.ConfigID, r.ConfigSvn = s.ConfigID.String(), &s.ConfigSvn
		}
	}
	if t := c.TDX; t != nil {
		r.MrTd, r.Rtmr0, r.Rtmr1, r.Rtmr2, r.Rtmr3 = t.MrTd.String(), t.Rtmr0.String(), t.Rtmr1.String(), t.Rtmr2.String(), t.Rtmr3.String()
		r.MrConfigID, r.MrOwner, r.MrOwnerConfig = t.MrConfigID.String(), t.MrOwner.String(), t.MrOwnerConfig.String()
		r.TdAttributes = t.TdAttributes.String()
		if len(t.MrServiceTd) > 0 {
			r.MrServiceTd = t.MrServiceTd.String()
		}
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

	// Durability: written counts records written (under mu); syncMu
	// serialises syncs and synced is the count the last sync covered.
	// A record is returned from Record only once a sync that started
	// after its write has succeeded: a group commit, since one sync
	// covers every record written before it started.
	sync    func() error
	written uint64
	syncMu  sync.Mutex
	synced  uint64
	syncs   atomic.Uint64
}

// Syncer is a writer whose writes can be made durable (an *os.File).
type Syncer interface{ Sync() error }

// New writes JSON lines to w (nil: none) and a summary to log (nil: none).
// When w has a Sync method (an *os.File), every record is synced before
// Record returns.
func New(w io.Writer, log *slog.Logger) *Logger {
	l := &Logger{w: w, log: log}
	if s, ok := w.(Syncer); ok {
		l.sync = s.Sync
	}
	return l
}

// Rotation bounds the audit file: it is rotated when it reaches MaxSizeMB,
// and rotated files beyond MaxBackups or older than MaxAgeDays are
// removed (lumberjack).
type Rotation struct {
	MaxSizeMB  int  // default 100
	MaxBackups int  // default 10
	MaxAgeDays int  // default 0: no age limit
	Compress   bool // gzip rotated files
	// NoSync skips the fsync of each record (group-committed) before
	// Record returns. Records then survive a crash of the process but
	// not of the machine: for tests, or a disk whose write cache survives
	// power loss.
	NoSync bool
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
	if r.NoSync {
		return &Logger{w: lj, c: lj, log: log}, nil
	}
	fs := &fileSyncer{path: filepath.Clean(path)}
	return &Logger{w: lj, c: multiCloser{lj, fs}, log: log, sync: fs.sync}, nil
}

// fileSyncer makes the audit file's records durable. lumberjack keeps its
// file to itself, so this holds its own descriptor of the same file: on
// Linux (and every POSIX system asps runs on) fsync flushes the file's
// data whichever descriptor wrote it. After a rotation the old file is
// synced first (the descriptor follows the rename), then the new one and
// the directory that now names it.
type fileSyncer struct {
	path string
	f    *os.File
}

func (s *fileSyncer) sync() error {
	if s.f != nil {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("sync audit log: %w", err)
		}
		cur, err1 := s.f.Stat()
		now, err2 := os.Stat(s.path)
		if err1 == nil && err2 == nil && os.SameFile(cur, now) {
			return nil
		}
		s.f.Close()
		s.f = nil
	}
	f, err := os.OpenFile(s.path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("sync audit log: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync audit log: %w", err)
	}
	// The directory entry of a file made by rotation is durable too.
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		d.Sync()
		d.Close()
	}
	s.f = f
	return nil
}

func (s *fileSyncer) Close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

type multiCloser []io.Closer

func (m multiCloser) Close() error {
	var errs []error
	for _, c := range m {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
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
	if _, err := l.w.Write(b); err != nil {
		l.failedLocked(lossy)
		l.mu.Unlock()
		return fmt.Errorf("write audit record: %w", err)
	}
	l.written++
	seq := l.written
	l.mu.Unlock()
	if err := l.commit(seq); err != nil {
		l.mu.Lock()
		l.failedLocked(lossy)
		l.mu.Unlock()
		return err
	}
	l.mu.Lock()
	l.lost = 0
	l.mu.Unlock()
	return nil
}

func (l *Logger) failedLocked(lossy bool) {
	if lossy || l.lost == 0 {
		l.lost++
	}
	l.failures.Add(1)
}

// commit returns once the records up to seq are durable: one sync covers
// every record written before it starts, so concurrent writers share
// syncs (group commit) rather than queueing one each.
func (l *Logger) commit(seq uint64) error {
	if l.sync == nil {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.synced >= seq {
		return nil
	}
	l.mu.Lock()
	upTo := l.written
	l.mu.Unlock()
	l.syncs.Add(1)
	if err := l.sync(); err != nil {
		return fmt.Errorf("write audit record: %w", err)
	}
	l.synced = upTo
	return nil
}

// Syncs returns how many syncs the log has made (records share them).
func (l *Logger) Syncs() uint64 {
	if l == nil {
		return 0
	}
	return l.syncs.Load()
}

// Close closes the file Open opened.
func (l *Logger) Close() error {
	if l == nil || l.c == nil {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	return l.c.Close()
}
