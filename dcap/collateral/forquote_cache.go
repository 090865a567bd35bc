package collateral

import (
	"crypto/sha256"
	"sync"
)

// pckMemo remembers what ForQuote read from a PCK certificate chain — the
// FMSPC and the PCK CA — by the SHA-256 of the chain's bytes, so the
// chain (three PEM certificates) is not decoded and parsed again for
// every quote of a platform already seen: that re-parsing cost a
// production server as much CPU as the quote's own verification. The
// answer is a function of the bytes alone; failures are not remembered.
// Bounded: when it holds pckMemoMax chains it is emptied (platforms are
// few; a flood of distinct chains costs what it cost before, parsing).
type pckMemo struct {
	mu sync.Mutex
	m  map[[32]byte]pckInfo
}

type pckInfo struct{ fmspc, ca string }

const pckMemoMax = 1024

var forQuoteMemo = &pckMemo{m: map[[32]byte]pckInfo{}}

func (p *pckMemo) get(k [32]byte) (pckInfo, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.m[k]
	return v, ok
}

func (p *pckMemo) put(k [32]byte, v pckInfo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.m) >= pckMemoMax {
		clear(p.m)
	}
	p.m[k] = v
}

func (p *pckMemo) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}

func chainKey(pem []byte) [32]byte { return sha256.Sum256(pem) }
