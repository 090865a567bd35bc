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
	"sync"
	"time"

	"github.com/asps-project/asps/claims"
)

// Decision values.
const (
	Allow = "allow"
	Deny  = "deny"
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
}

// New writes JSON lines to w (nil: none) and a summary to log (nil: none).
func New(w io.Writer, log *slog.Logger) *Logger { return &Logger{w: w, log: log} }

// Open appends JSON lines to the file at path (created 0600).
func Open(path string, log *slog.Logger) (*Logger, error) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return &Logger{w: f, c: f, log: log}, nil
}

// Record writes one decision. A failure to write the audit file is
// returned: a caller that cannot audit a release should not release.
func (l *Logger) Record(r Record) error {
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
		return fmt.Errorf("write audit record: %w", err)
	}
	return nil
}

// Close closes the file Open opened.
func (l *Logger) Close() error {
	if l == nil || l.c == nil {
		return nil
	}
	return l.c.Close()
}
