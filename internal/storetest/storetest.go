// Package storetest holds test doubles of store.Store shared by the tests
// of several packages.
package storetest

import (
	"context"
	"sync/atomic"

	"github.com/asps-project/asps/store"
)

// Gate holds every Get until Open is closed (or the Get's context ends),
// then reads from Store; Entered counts the Gets that arrived.
type Gate struct {
	store.Store
	Open    chan struct{}
	Entered atomic.Int32
}

// NewGate returns a closed-door Gate in front of s.
func NewGate(s store.Store) *Gate { return &Gate{Store: s, Open: make(chan struct{})} }

// Get waits for Open, then reads from the store behind the gate.
func (g *Gate) Get(ctx context.Context, r store.Request) ([]byte, error) {
	g.Entered.Add(1)
	select {
	case <-g.Open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.Store.Get(ctx, r)
}
