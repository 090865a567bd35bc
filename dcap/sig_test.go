package dcap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"math/big"
	"testing"
)

// TestVerifyRS: raw r‖s signatures, including r or s with leading zero
// bytes or a high bit set, verify exactly when crypto/ecdsa says so.
func TestVerifyRS(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var zeroLead, highBit int
	for i := 0; i < 3000 || zeroLead == 0; i++ {
		d := sha256.Sum256([]byte{byte(i), byte(i >> 8), byte(i >> 16)})
		der, err := ecdsa.SignASN1(rand.Reader, k, d[:])
		if err != nil {
			t.Fatal(err)
		}
		var sig struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &sig); err != nil {
			t.Fatal(err)
		}
		raw := make([]byte, 64)
		sig.R.FillBytes(raw[:32])
		sig.S.FillBytes(raw[32:])
		if raw[0] == 0 || raw[32] == 0 {
			zeroLead++
		}
		if raw[0]&0x80 != 0 {
			highBit++
		}
		if !verifyRS(&k.PublicKey, d[:], raw) {
			t.Fatalf("signature %d (r %x) does not verify", i, raw[:32])
		}
		raw[63] ^= 1
		if verifyRS(&k.PublicKey, d[:], raw) {
			t.Fatalf("changed signature %d verifies", i)
		}
		if i > 100000 {
			t.Fatal("no r or s with a leading zero byte in 100000 signatures")
		}
	}
	if highBit == 0 {
		t.Fatal("no r with the high bit set")
	}
	if verifyRS(&k.PublicKey, make([]byte, 32), make([]byte, 63)) || verifyRS(&k.PublicKey, make([]byte, 32), make([]byte, 64)) {
		t.Fatal("a short or zero signature verifies")
	}
}
