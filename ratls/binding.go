package ratls

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
)

// Binding says how a quote's report data commits to a certificate key.
type Binding struct {
	// Binds is true when the report data commits to the key.
	Binds bool
	// Method names the commitment that held, e.g.
	// "report_data[0:32] = sha-256(claims-buffer); pubkey-hash sha-256(spki)".
	Method string
	// Err says why it does not bind; nil when Binds.
	Err error
	// Kind is how it binds, when it does: claims.BindingReportData,
	// claims.BindingTCG or claims.BindingTCGLabelled.
	Kind string
}

var prefixHashes = []struct {
	h    func() hash.Hash
	name string
}{
	{sha256.New, "sha-256"},
	{sha512.New384, "sha-384"},
	{sha512.New, "sha-512"},
}

// matchPrefix reports which hash of data equals the same-length prefix of
// reportData (sha-256 in [0:32], sha-384 in [0:48], sha-512 in [0:64]).
func matchPrefix(reportData [64]byte, data []byte) (string, bool) {
	for _, ph := range prefixHashes {
		d := digest(ph.h, data)
		if bytes.Equal(reportData[:len(d)], d) {
			return ph.name, true
		}
	}
	return "", false
}

// CheckBinding decides whether the evidence's quote commits to the
// certificate key with DER SubjectPublicKeyInfo spki. q is the parsed quote
// of ev.
//
// Raw-quote formats: report_data must start with SHA-256(spki) (or
// SHA-384/SHA-512 over 48/64 bytes). TCG format: the claims buffer must
// hold a "pubkey-hash" with a supported algorithm equal to the hash of spki,
// and report_data must start with SHA-256 (or SHA-384/512) of the claims
// buffer. The rest of report_data is not read.
func CheckBinding(ev *Evidence, q *dcap.Quote, spki []byte) Binding {
	rd := q.ReportData()
	if ev.Format != FormatTCG {
		if name, ok := matchPrefix(rd, spki); ok {
			return Binding{Binds: true, Kind: claims.BindingReportData, Method: fmt.Sprintf("report_data[0:%d] = %s(spki)", hashLen(name), name)}
		}
		want := sha256.Sum256(spki)
		return Binding{Err: fail("check binding", ErrBindingMismatch,
			"%s quote: report_data[0:32] = %s, want SHA-256(SubjectPublicKeyInfo) = %s",
			ev.OID, hex.EncodeToString(rd[:32]), hex.EncodeToString(want[:]))}
	}
	c := ev.Claims
	if c == nil || c.PubkeyHashAlg == 0 && c.PubkeyHash == nil {
		return Binding{Err: fail("check binding", ErrBindingMismatch, "claims buffer has no %q claim", ClaimPubkeyHash)}
	}
	h, name, ok := hashByID(c.PubkeyHashAlg)
	if !ok {
		return Binding{Err: fail("check binding", ErrBindingMismatch, "pubkey-hash algorithm %d is not supported (want 1 sha-256, 7 sha-384 or 8 sha-512)", c.PubkeyHashAlg)}
	}
	want := digest(h, spki)
	if !bytes.Equal(c.PubkeyHash, want) {
		return Binding{Err: fail("check binding", ErrBindingMismatch, "pubkey-hash = %s(%s), want %s(SubjectPublicKeyInfo) = %s",
			name, hex.EncodeToString(c.PubkeyHash), name, hex.EncodeToString(want))}
	}
	bufName, ok := matchPrefix(rd, ev.ClaimsBuffer)
	if !ok {
		sum := sha256.Sum256(ev.ClaimsBuffer)
		return Binding{Err: fail("check binding", ErrBindingMismatch, "report_data[0:32] = %s, want SHA-256(claims buffer) = %s",
			hex.EncodeToString(rd[:32]), hex.EncodeToString(sum[:]))}
	}
	b := Binding{Binds: true, Kind: claims.BindingTCG, Method: fmt.Sprintf("report_data[0:%d] = %s(claims-buffer); pubkey-hash = %s(spki)", hashLen(bufName), bufName, name)}
	if c.Domain == DomainCertificate && exactReportData(rd, ev.ClaimsBuffer) {
		b.Kind = claims.BindingTCGLabelled
		b.Method += "; " + ClaimDomain + " " + DomainCertificate
	}
	return b
}

// exactReportData reports whether report_data is SHA-256(buf) followed by
// 32 zero bytes: all 64 bytes fixed by the buffer, none left for a caller
// to choose.
func exactReportData(rd [64]byte, buf []byte) bool {
	var want [64]byte
	sum := sha256.Sum256(buf)
	copy(want[:], sum[:])
	return rd == want
}

func hashLen(name string) int {
	switch name {
	case "sha-384":
		return 48
	case "sha-512":
		return 64
	}
	return 32
}
