package devmode

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/ratls"
)

// simCollateral serves the simulator's collateral for the default simulated
// SGX and TDX platforms, made anew each day so it never expires under a
// long-running dev server.
type simCollateral struct {
	mu   sync.Mutex
	att  map[claims.TEE]*sim.Attester
	col  map[claims.TEE]*dcap.Collateral
	made map[claims.TEE]time.Time
	now  func() time.Time
}

func newSimCollateral(pki *sim.PKI) (*simCollateral, error) {
	s := &simCollateral{att: map[claims.TEE]*sim.Attester{}, col: map[claims.TEE]*dcap.Collateral{}, made: map[claims.TEE]time.Time{}, now: time.Now}
	for _, tee := range []claims.TEE{claims.SGX, claims.TDX} {
		a, err := sim.NewAttester(sim.Options{PKI: pki, TEE: tee})
		if err != nil {
			return nil, fmt.Errorf("dev: simulated %s platform: %w", tee, err)
		}
		s.att[tee] = a
	}
	return s, nil
}

func (s *simCollateral) get(_ context.Context, q *dcap.Quote) (*dcap.Collateral, ratls.CollateralInfo, error) {
	tee := claims.TEE(q.TEE())
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if c, ok := s.col[tee]; ok && now.Sub(s.made[tee]) < 24*time.Hour {
		return c, ratls.CollateralInfo{}, nil
	}
	c, err := s.att[tee].Collateral(now)
	if err != nil {
		return nil, ratls.CollateralInfo{}, fmt.Errorf("simulated collateral: %w", err)
	}
	s.col[tee], s.made[tee] = c, now
	return c, ratls.CollateralInfo{}, nil
}
