package sim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/asps-project/asps/dcap"
)

// Tampering with existing quotes, real ones included, for attack tools and
// tests: the result's signatures are not redone, so a verifier must refuse
// it — the point is to see for which reason, and at what cost.

// SetReportData returns a copy of quote with its report data replaced by
// rd (SGX and TD bodies, quote v3, v4 and v5).
func SetReportData(quote []byte, rd [64]byte) ([]byte, error) {
	q, err := dcap.ParseQuote(quote)
	if err != nil {
		return nil, fmt.Errorf("sim: set report data: %w", err)
	}
	body := 48 // header
	if q.Header.Version == 5 {
		body += 2 + 4 // body type and size
	}
	off := body + 320 // SGX report body
	if q.TD != nil {
		off = body + 520 // TD report body
	}
	out := bytes.Clone(quote)
	copy(out[off:off+64], rd[:])
	return out, nil
}

// ReplaceCertData returns a copy of quote whose PCK certificate chain (the
// certification data of type 5, inside type 6 where the quote has it) is
// chain, with every enclosing length adjusted.
func ReplaceCertData(quote, chain []byte) ([]byte, error) {
	q, err := dcap.ParseQuote(quote)
	if err != nil {
		return nil, fmt.Errorf("sim: replace certification data: %w", err)
	}
	old := q.CertData.PCKCertChain
	at := bytes.Index(quote, old)
	if len(old) == 0 || at < 0 || bytes.Contains(quote[at+1:], old) {
		return nil, errors.New("sim: replace certification data: the PCK chain is not found once in the quote")
	}
	delta := uint32(len(chain) - len(old))
	out := append(append(append([]byte{}, quote[:at]...), chain...), quote[at+len(old):]...)
	add := func(off int) {
		binary.LittleEndian.PutUint32(out[off:], binary.LittleEndian.Uint32(out[off:])+delta)
	}
	add(at - 4)            // type-5 certification data size
	add(len(q.SignedData)) // signature_data_len
	if q.Header.Version != 3 {
		add(len(q.SignedData) + 4 + 64 + 64 + 2) // the type-6 certification data size
	}
	return out, nil
}
