package ratls

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
)

// fakeTEE makes Intel-shaped SGX v3 quotes signed by its own attestation
// key. It stands in for dcap/sim: the quotes parse with dcap.ParseQuote and
// a fakeQuoteVerifier that trusts the attestation key verifies them.
type fakeTEE struct {
	attKey    *ecdsa.PrivateKey
	mrEnclave [32]byte
	mrSigner  [32]byte
	debug     bool
	// override, when set, replaces the report data the caller asked for.
	override func([64]byte) [64]byte
	calls    atomic.Int32
}

func newFakeTEE(t testing.TB, debug bool) *fakeTEE {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeTEE{attKey: k, debug: debug}
	f.mrEnclave = sha256.Sum256([]byte("fake enclave"))
	f.mrSigner = sha256.Sum256([]byte("fake signer"))
	return f
}

func (f *fakeTEE) Name() string { return "fake" }

func (f *fakeTEE) Quote(_ context.Context, rd [64]byte) ([]byte, error) {
	f.calls.Add(1)
	if f.override != nil {
		rd = f.override(rd)
	}
	return f.quote(rd), nil
}

func (f *fakeTEE) quote(rd [64]byte) []byte {
	le16 := binary.LittleEndian.AppendUint16
	le32 := binary.LittleEndian.AppendUint32
	var q []byte
	q = le16(q, 3)                    // version
	q = le16(q, dcap.AttKeyECDSAP256) // attestation key type
	q = le32(q, 0)                    // reserved (TEE type: SGX)
	q = le16(q, 9)                    // QE SVN
	q = le16(q, 13)                   // PCE SVN
	q = append(q, dcap.IntelQEVendorID[:]...)
	q = append(q, make([]byte, 20)...) // user data
	body := make([]byte, dcap.SGXReportLen)
	body[48] = dcap.AttrInit | dcap.AttrMode64
	if f.debug {
		body[48] |= dcap.AttrDebug
	}
	copy(body[64:96], f.mrEnclave[:])
	copy(body[128:160], f.mrSigner[:])
	binary.LittleEndian.PutUint16(body[256:], 7) // ISV prod ID
	binary.LittleEndian.PutUint16(body[258:], 2) // ISV SVN
	copy(body[320:384], rd[:])
	q = append(q, body...)

	digest := sha256.Sum256(q)
	r, s, err := ecdsa.Sign(rand.Reader, f.attKey, digest[:])
	if err != nil {
		panic(err)
	}
	var sig []byte
	sig = append(sig, r.FillBytes(make([]byte, 32))...)
	sig = append(sig, s.FillBytes(make([]byte, 32))...)
	pub, err := f.attKey.PublicKey.Bytes() // 0x04 ‖ x ‖ y
	if err != nil {
		panic(err)
	}
	sig = append(sig, pub[1:]...)
	sig = append(sig, make([]byte, dcap.SGXReportLen)...) // QE report
	sig = append(sig, make([]byte, 64)...)                // QE report signature
	sig = le16(sig, 0)                                    // QE auth data size
	sig = le16(sig, dcap.CertDataPCKChain)                // certification data type
	sig = le32(sig, 0)                                    // (empty) PCK chain
	q = le32(q, uint32(len(sig)))
	return append(q, sig...)
}

// fakeQuoteVerifier verifies fakeTEE quotes: structure, the attestation
// key's signature, and that the key is a trusted one — the stand-in for a
// PCK chain up to a trusted root.
type fakeQuoteVerifier struct {
	trusted []*ecdsa.PublicKey
	expiry  time.Time // CollateralExpiry of the claims
	calls   atomic.Int32
}

func (v *fakeQuoteVerifier) Verify(_ context.Context, b []byte) (*claims.Claims, error) {
	v.calls.Add(1)
	q, err := dcap.ParseQuote(b)
	if err != nil {
		return nil, err
	}
	key, err := q.AttestationPublicKey()
	if err != nil {
		return nil, err
	}
	trusted := false
	for _, k := range v.trusted {
		if k.Equal(key) {
			trusted = true
		}
	}
	if !trusted {
		return nil, &dcap.Rejection{Check: "verify PCK certificate chain", Reason: dcap.ErrUntrustedRoot, Detail: "attestation key chains to no trusted root"}
	}
	digest := sha256.Sum256(q.SignedData)
	if !ecdsa.Verify(key, digest[:], bigInt(q.Signature[:32]), bigInt(q.Signature[32:])) {
		return nil, &dcap.Rejection{Check: "verify quote signature", Reason: dcap.ErrQuoteSignature}
	}
	return claimsOf(q, v.expiry), nil
}

// claimsOf builds the claims a verifier would report for q (no TCB
// evaluation).
func claimsOf(q *dcap.Quote, expiry time.Time) *claims.Claims {
	rd := q.ReportData()
	c := &claims.Claims{
		TEE:              claims.TEE(q.TEE()),
		QuoteVersion:     int(q.Header.Version),
		Debug:            q.Debug(),
		ReportData:       rd[:],
		TCBStatus:        claims.StatusUpToDate,
		AdvisoryIDs:      []string{},
		CollateralExpiry: expiry,
	}
	if q.SGX != nil {
		c.SGX = &claims.SGXIdentity{
			MrEnclave: q.SGX.MrEnclave[:], MrSigner: q.SGX.MrSigner[:],
			IsvProdID: q.SGX.IsvProdID, IsvSvn: q.SGX.IsvSVN, Attributes: q.SGX.Attributes[:],
		}
	}
	return c
}

// parseOnlyVerifier accepts any well-formed quote: for the real
// certificates, whose TCB info is not in the corpus.
var parseOnlyVerifier = QuoteVerifierFunc(func(_ context.Context, b []byte) (*claims.Claims, error) {
	q, err := dcap.ParseQuote(b)
	if err != nil {
		return nil, fmt.Errorf("parse-only verifier: %w", err)
	}
	return claimsOf(q, time.Time{}), nil
})

var errFakeVerifier = errors.New("fake verifier says no")

func bigInt(b []byte) *big.Int { return new(big.Int).SetBytes(b) }

func parseQuoteT(b []byte) (*dcap.Quote, error) { return dcap.ParseQuote(b) }

var hashSHA384 = sha512.New384

func sha1Sum(b []byte) []byte { h := sha1.Sum(b); return h[:] }

func cborTag(n uint64, content any) cbor.Tag { return cbor.Tag{Number: n, Content: content} }
