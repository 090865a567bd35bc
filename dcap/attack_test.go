package dcap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Attacks on the verifier as a library and on its caches (issue 11 items
// 8, 12 and 13). Each test names the attack; each asserts the reason.

// sgxCase is the real SGX v3 quote of the corpus, accepted at its time.
func sgxCase(t testing.TB) corpusCase {
	t.Helper()
	for _, c := range loadCorpus(t) {
		if c.name == "sgx-v3-config-sw-hardening" {
			return c
		}
	}
	t.Fatal("corpus case sgx-v3-config-sw-hardening missing")
	return corpusCase{}
}

// withCertData returns quote with its PCK certification data (type 5)
// replaced by chain, every enclosing length adjusted. Nothing that is
// signed changes: the PCK chain is covered by no signature of the quote.
func withCertData(t testing.TB, quote, chain []byte) []byte {
	t.Helper()
	q, err := ParseQuote(quote)
	if err != nil {
		t.Fatal(err)
	}
	old := q.CertData.PCKCertChain
	at := bytes.Index(quote, old)
	if at < 0 || bytes.Contains(quote[at+1:], old) {
		t.Fatal("certification data not found once in the quote")
	}
	delta := uint32(len(chain) - len(old))
	out := append(append(append([]byte{}, quote[:at]...), chain...), quote[at+len(old):]...)
	add := func(off int) {
		binary.LittleEndian.PutUint32(out[off:], binary.LittleEndian.Uint32(out[off:])+delta)
	}
	add(at - 4)                // type-5 certification data size
	add(len(q.SignedData))     // signature_data_len
	if q.Header.Version != 3 { // v4/v5: the type-6 certification data size
		add(len(q.SignedData) + 4 + 64 + 64 + 2)
	}
	return out
}

// TestAttack_PCKChainPaddingInflatesCache: Intel's public PCK chain sent
// with 4,000 unique paddings must not grow the chain cache (it took a
// server from 18 MB to 559 MB and evicted legitimate entries): junk around
// or between the PEM blocks, or PEM headers, is refused as malformed; the
// byte forms that are allowed (whitespace, Intel's trailing NULs) are the
// same chain to the cache, keyed by the certificates' DER.
func TestAttack_PCKChainPaddingInflatesCache(t *testing.T) {
	c := sgxCase(t)
	q, err := ParseQuote(c.quote)
	if err != nil {
		t.Fatal(err)
	}
	chain := q.CertData.PCKCertChain
	blocks := strings.SplitAfter(strings.TrimRight(string(chain), "\x00\n"), "-----END CERTIFICATE-----")
	blocks = blocks[:3]
	v := NewVerifier(WithCacheBytes(64*chainEntryBytes, DefaultCollateralCacheBytes))
	if _, err := v.Verify(c.quote, c.collateral, c.exp.VerifyAt); err != nil {
		t.Fatalf("the legitimate quote: %v", err)
	}
	junk := []func(i int) string{
		func(i int) string { return fmt.Sprintf("pad %d\n", i) + strings.Join(blocks, "") },         // before the chain
		func(i int) string { return blocks[0] + fmt.Sprintf("\n#%d\n", i) + blocks[1] + blocks[2] }, // between blocks
		func(i int) string { return strings.Join(blocks, "") + fmt.Sprintf("\n%d", i) },             // after the chain
		func(i int) string { return strings.Join(blocks, "") + "\n\x00" + fmt.Sprintf("%d", i) },    // after the NULs
		func(i int) string {
			return strings.Replace(blocks[0], "-----\n", fmt.Sprintf("-----\nX-Pad: %d\n\n", i), 1) + blocks[1] + blocks[2]
		}, // a PEM header
	}
	for i := range 4000 {
		pad := junk[i%len(junk)](i)
		_, err := v.Verify(withCertData(t, c.quote, []byte(pad)), c.collateral, c.exp.VerifyAt)
		var r *Rejection
		if !errors.As(err, &r) || r.Reason != ErrMalformed || r.Check != CheckPCKChain {
			t.Fatalf("padding %d (%q…): %v; want %s: %v", i, pad[:min(len(pad), 40)], err, CheckPCKChain, ErrMalformed)
		}
	}
	// Allowed byte forms of the same chain: one cache entry.
	for i := range 200 {
		pad := strings.Repeat("\n", i%7) + blocks[0] + strings.Repeat(" ", i) + blocks[1] + "\r\n" + blocks[2] + "\n" + strings.Repeat("\x00", i%5)
		if _, err := v.Verify(withCertData(t, c.quote, []byte(pad)), c.collateral, c.exp.VerifyAt); err != nil {
			t.Fatalf("whitespace form %d: %v", i, err)
		}
	}
	s := v.Stats()
	if s.Chain.Entries != 1 || s.Chain.Evictions != 0 {
		t.Fatalf("chain cache after the flood: %+v; want the one legitimate entry, nothing evicted", s.Chain)
	}
	if s.Chain.Bytes > s.Chain.MaxBytes {
		t.Fatalf("chain cache holds %d bytes, bound %d", s.Chain.Bytes, s.Chain.MaxBytes)
	}
	hits := s.ChainHits
	if _, err := v.Verify(c.quote, c.collateral, c.exp.VerifyAt); err != nil {
		t.Fatal(err)
	}
	if v.Stats().ChainHits != hits+1 {
		t.Fatal("the legitimate chain was evicted by the flood")
	}
}

// TestPCKCertDataForms: the certification data as Intel emits it (the
// corpus: a newline and a NUL after the chain) parses; junk does not.
func TestPCKCertDataForms(t *testing.T) {
	for _, c := range loadCorpus(t) {
		q, err := ParseQuote(c.quote)
		if err != nil {
			t.Fatal(err)
		}
		ders, err := splitPEMChain(q.CertData.PCKCertChain, "pck_cert_chain")
		if err != nil || len(ders) != 3 {
			t.Fatalf("%s: %d certificates, %v", c.name, len(ders), err)
		}
		certs, _ := ParseChainPEM(q.CertData.PCKCertChain, "x")
		for i := range certs {
			if !bytes.Equal(certs[i].Raw, ders[i]) {
				t.Fatalf("%s: certificate %d differs from the lenient parse", c.name, i)
			}
		}
	}
	for _, bad := range []string{"", "\x00", "junk", "-----BEGIN CERTIFICATE-----\nAAAA\n", "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"} {
		if _, err := splitPEMChain([]byte(bad), "x"); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v, want malformed", bad, err)
		}
	}
}

// TestAttack_CachedCollateralSkipsCRLRequirement: collateral without CRLs,
// once verified chain-only (and cached), then presented to VerifyQuote
// with CRL fields set by the caller, must not pass without a revocation
// check; nor may a fresh verifier be fooled by the edited fields.
func TestAttack_CachedCollateralSkipsCRLRequirement(t *testing.T) {
	c := sgxCase(t)
	raw := rawOf(c.collateral)
	raw.PCKCRL, raw.RootCACRL = nil, nil
	for _, cached := range []bool{true, false} {
		t.Run(fmt.Sprintf("cached=%v", cached), func(t *testing.T) {
			noCRL, err := NewCollateral(raw)
			if err != nil {
				t.Fatal(err)
			}
			v := NewVerifier()
			if cached {
				if _, err := v.VerifyChain(c.quote, noCRL, c.exp.VerifyAt); err != nil {
					t.Fatalf("chain-only: %v", err)
				}
			}
			// The caller edits the exported fields to look complete.
			noCRL.PCKCRL, noCRL.RootCACRL = c.collateral.PCKCRL, c.collateral.RootCACRL
			res, err := v.Verify(c.quote, noCRL, c.exp.VerifyAt)
			if !errors.Is(err, ErrCRLMissing) {
				t.Fatalf("got %v (revocation checked %v); want %v", err, res != nil && res.RevocationChecked, ErrCRLMissing)
			}
			pq, _ := ParseQuote(c.quote)
			if _, err := v.VerifyQuote(pq, noCRL, c.exp.VerifyAt); !errors.Is(err, ErrCRLMissing) {
				t.Fatalf("VerifyQuote: %v; want %v", err, ErrCRLMissing)
			}
		})
	}
}

// TestAttack_MutatedParsedQuoteChangesClaims: a caller that parses a real
// quote, changes the exported identity fields, and has it verified must
// get the claims of the signed bytes; so must one that changes the
// collateral's decoded documents after building it.
func TestAttack_MutatedParsedQuoteChangesClaims(t *testing.T) {
	c := sgxCase(t)
	v := NewVerifier()
	q, err := ParseQuote(c.quote)
	if err != nil {
		t.Fatal(err)
	}
	want := q.SGX.MrEnclave
	q.SGX.MrEnclave = [32]byte{0xaa}
	q.SGX.Attributes[0] &^= AttrDebug
	q.SGX.IsvProdID = 4242
	res, err := v.VerifyQuote(q, c.collateral, c.exp.VerifyAt)
	if err != nil {
		t.Fatalf("the signed bytes are intact, yet: %v", err)
	}
	if got := res.SGX.MrEnclave.String(); got != fmt.Sprintf("%x", want) || res.SGX.IsvProdID == 4242 {
		t.Fatalf("claims mr_enclave %s isv_prod_id %d: read from edited fields, want %x", got, res.SGX.IsvProdID, want)
	}
	// Fields the checks read (the QE report against the QE identity, the
	// signed region) are the verifier's own too.
	q.CertData.QEReport.MrSigner = [32]byte{1}
	q.SignedData = append([]byte{}, q.SignedData...)
	q.SignedData[100] ^= 1
	if res, err = v.VerifyQuote(q, c.collateral, c.exp.VerifyAt); err != nil || res.SGX.MrEnclave.String() != fmt.Sprintf("%x", want) {
		t.Fatalf("edited QE report and signed region: %v", err)
	}
	// Editing the result afterwards changes nothing the verifier keeps.
	res.Quote.SGX.MrEnclave = [32]byte{0xbb}
	res.PCK.FMSPC = [6]byte{}
	res.PCK.CPUSVN[0] ^= 0xff
	cpusvn := append([]byte{}, res.PCK.CPUSVN...)
	res2, err := v.Verify(c.quote, c.collateral, c.exp.VerifyAt)
	if err != nil || res2.SGX.MrEnclave.String() != fmt.Sprintf("%x", want) || res2.FMSPC != c.exp.FMSPC || bytes.Equal(res2.PCK.CPUSVN, cpusvn) {
		t.Fatalf("after editing a result: %v %s %s", err, res2.SGX.MrEnclave, res2.FMSPC)
	}
	// The collateral's decoded documents are not what the verdict reads.
	col, err := ParseCollateralJSON(mustMarshal(t, c.collateral))
	if err != nil {
		t.Fatal(err)
	}
	col.TCBInfo.TCBLevels[0].TCBStatus = "UpToDate"
	col.TCBInfo.TCBLevels[len(col.TCBInfo.TCBLevels)-1].TCBStatus = "UpToDate"
	col.TCBInfoBody = []byte(`{}`)
	res3, err := NewVerifier().Verify(c.quote, col, c.exp.VerifyAt)
	if err != nil || res3.TCBStatus != c.exp.Status {
		t.Fatalf("edited collateral fields: %v, status %v; want %s", err, res3, c.exp.Status)
	}
}

func mustMarshal(t testing.TB, col *Collateral) []byte {
	t.Helper()
	b, err := col.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAttack_RealQuoteMarkedSimulated: a verifier with both Intel's root
// and a simulator root must not mark a real quote simulated.
func TestAttack_RealQuoteMarkedSimulated(t *testing.T) {
	c := sgxCase(t)
	simRoot := selfSigned(t, "Simulated SGX Root CA")
	v := NewVerifier(WithTrustAnchors(IntelRootCA(), simRoot))
	res, err := v.Verify(c.quote, c.collateral, c.exp.VerifyAt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Simulated {
		t.Fatal("a real quote under Intel's root is marked simulated by a verifier that also trusts a simulator root")
	}
}

// TestAttack_NonZeroBytesAfterQuote: bytes after the signature data are
// signed by nothing: zeros (real TDX quotes are padded to 8,000 bytes)
// are padding, anything else makes the quote malformed. The quote's own
// and signed lengths are reported.
func TestAttack_NonZeroBytesAfterQuote(t *testing.T) {
	for _, c := range acceptedCases(t) {
		q0, err := ParseQuote(c.quote)
		if err != nil {
			t.Fatal(err)
		}
		proper := c.quote[:q0.Len()]
		padded := append(bytes.Clone(proper), make([]byte, 8000-len(proper))...)
		t.Run(c.name+"/zero-padding", func(t *testing.T) {
			res, err := NewVerifier().Verify(padded, c.collateral, c.exp.VerifyAt)
			if err != nil {
				t.Fatal(err)
			}
			if res.QuoteLen != len(proper) || res.SignedLen != len(q0.SignedData) || res.Quote.Trailing != 8000-len(proper) {
				t.Fatalf("quote_len %d signed_len %d padding %d; want %d %d %d", res.QuoteLen, res.SignedLen, res.Quote.Trailing, len(proper), len(q0.SignedData), 8000-len(proper))
			}
		})
		for _, tail := range [][]byte{{1}, append(make([]byte, 100), 0x80), []byte("extra bytes")} {
			t.Run(fmt.Sprintf("%s/trailing-%d", c.name, len(tail)), func(t *testing.T) {
				_, err := NewVerifier().Verify(append(bytes.Clone(proper), tail...), c.collateral, c.exp.VerifyAt)
				var r *Rejection
				if !errors.As(err, &r) || r.Reason != ErrMalformed || r.Check != CheckParse {
					t.Fatalf("%v; want %s: %v", err, CheckParse, ErrMalformed)
				}
			})
		}
	}
}
