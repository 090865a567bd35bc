package collateral

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/asps-project/asps/dcap"
)

// Options configure a Cache.
type Options struct {
	// Client fetches from a PCS or PCCS; nil makes the cache offline
	// (it serves what Dir holds and never fetches).
	Client *Client
	// Dir, if set, keeps verified documents on disk in the bundle layout
	// (see the package documentation), so they survive a restart. It is
	// read when the cache is made and written after every fetch.
	Dir string
	// TrustAnchors are the roots documents must chain to, pinned by key
	// (default: Intel's SGX Root CA).
	TrustAnchors []*x509.Certificate
	// Verify replaces the verification of documents (default: a Checker
	// over TrustAnchors).
	Verify VerifyFunc
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Grace lets a document be served this long past its expiry when no
	// fresh copy can be fetched. Info.Grace says so. Zero: fail closed at
	// expiry.
	Grace time.Duration
	// A document is refreshed ahead of expiry once less than RefreshLead
	// or RefreshFraction of its validity window remains, whichever is
	// earlier (defaults 1h and 0.25); while a refresh brings nothing newer,
	// it is retried at most every MinRefreshInterval (default 15m).
	RefreshLead        time.Duration
	RefreshFraction    float64
	MinRefreshInterval time.Duration
	// FailureTTL is how long a failed fetch is remembered: requests for a
	// missing or expired document within it get the same error at once
	// instead of a new fetch (default 10s; negative: never remembered).
	FailureTTL time.Duration
	// RefreshInterval is how often the background loop looks for
	// documents to refresh (default 1m; negative: no background loop; the
	// refresh then happens when a request finds a document due).
	RefreshInterval time.Duration
	// Logger receives refresh failures and disk errors (default
	// slog.Default()).
	Logger *slog.Logger
	// MaxFetches bounds the fetches in flight to the service at once
	// (default 8); more wait for a slot, and leave the queue when nobody
	// waits for them any more.
	MaxFetches int
	// UnknownBurst and UnknownEvery bound the fetches of documents the
	// cache never held (an FMSPC asked for the first time, as anyone can
	// from the mirror or with a made-up quote): at most UnknownBurst at
	// once, then one per UnknownEvery (defaults 32 and 10s; a negative
	// UnknownBurst: no limit). Beyond it a request fails with ErrBusy and
	// costs the service, and the API key, nothing. Refreshes of documents
	// held are not limited.
	UnknownBurst int
	UnknownEvery time.Duration
}

// Cache is a Source that fetches collateral from a PCS or PCCS, verifies
// it, keeps it in memory and on disk until it expires, refreshes it in the
// background ahead of expiry, and fails closed (or serves under a grace
// period) when the service is unreachable. Concurrent requests for the
// same missing document share one fetch. Safe for concurrent use; Close
// stops its background work.
type Cache struct {
	o      Options
	client *Client
	verify VerifyFunc
	now    func() time.Time
	log    *slog.Logger

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	slots   map[Key]*slot
	flights map[Key]*flight
	closed  bool

	amu  sync.Mutex
	cols map[colKey]*assembled

	dmu sync.Mutex // serializes disk writes

	sem     chan struct{} // a slot per fetch in flight to the service
	unknown *rate.Limiter // fetches of documents never held; nil: unlimited

	stats struct {
		hits, fetches, fetchFailures, rejected, grace, stale, rollbacks, limited atomic.Uint64
	}

	// gen counts the documents in force that were replaced by a different
	// one (a newer CRL, TCB info or QE identity): Generation.
	gen atomic.Uint64
}

type slot struct {
	doc         *Document
	attempt     time.Time // last fetch started
	err         error     // last fetch failure, nil after a success
	errAt       time.Time
	graceWarned time.Time // last warning about serving under grace
}

type flight struct {
	done chan struct{}
	doc  *Document
	err  error

	// c.mu guards these.
	waiters    int                // callers waiting
	background bool               // a refresh: runs on when nobody waits
	cancel     context.CancelFunc // cancels the fetch
}

type colKey struct{ tee, fmspc, ca string }

type assembled struct {
	docs [4]*Document
	col  *dcap.Collateral
}

// Stats counts what a Cache did, for metrics.
type Stats struct {
	Hits          uint64 // documents served from memory without a fetch
	Fetches       uint64 // fetches that brought a verified document
	FetchFailures uint64 // fetches that failed (unreachable, refused, not found)
	Rejected      uint64 // fetched documents that failed verification
	Grace         uint64 // documents served under the grace period
	Stale         uint64 // requests refused because a document expired
	Rollbacks     uint64 // documents refused as older than the copy in force (ErrRollback)
	Limited       uint64 // fetches refused by the limits (ErrBusy, ErrRateLimited)
	InFlight      int    // fetches in flight or queued now
}

// NewCache makes a cache and, with a Client, starts its background
// refresh. Documents in Dir are loaded and verified (except for their
// dates); a file that fails is logged and ignored.
func NewCache(o Options) (*Cache, error) {
	c, err := newCache(o)
	if err != nil {
		return nil, err
	}
	if o.Dir != "" {
		if err := os.MkdirAll(o.Dir, 0o755); err != nil && o.Client != nil {
			return nil, fmt.Errorf("collateral: cache directory: %w", err)
		}
		if o.Client != nil {
			cleanTemp(o.Dir)
		}
		if err := c.load(o.Dir, false); err != nil {
			return nil, err
		}
	}
	if c.client != nil && o.RefreshInterval >= 0 {
		iv := o.RefreshInterval
		if iv == 0 {
			iv = time.Minute
		}
		c.wg.Add(1)
		go c.loop(iv)
	}
	return c, nil
}

func newCache(o Options) (*Cache, error) {
	c := &Cache{o: o, client: o.Client, verify: o.Verify, now: o.Now, log: o.Logger,
		slots: map[Key]*slot{}, flights: map[Key]*flight{}, cols: map[colKey]*assembled{}}
	if c.verify == nil {
		c.verify = NewChecker(o.TrustAnchors...).Check
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.o.RefreshLead == 0 {
		c.o.RefreshLead = time.Hour
	}
	if c.o.RefreshFraction == 0 {
		c.o.RefreshFraction = 0.25
	}
	if c.o.MinRefreshInterval == 0 {
		c.o.MinRefreshInterval = 15 * time.Minute
	}
	if c.o.FailureTTL == 0 {
		c.o.FailureTTL = 10 * time.Second
	}
	if c.o.Grace < 0 {
		return nil, errors.New("collateral: negative grace period")
	}
	if c.o.MaxFetches <= 0 {
		c.o.MaxFetches = 8
	}
	c.sem = make(chan struct{}, c.o.MaxFetches)
	if c.o.UnknownBurst == 0 {
		c.o.UnknownBurst = 32
	}
	if c.o.UnknownEvery <= 0 {
		c.o.UnknownEvery = 10 * time.Second
	}
	if c.o.UnknownBurst > 0 {
		c.unknown = rate.NewLimiter(rate.Every(c.o.UnknownEvery), c.o.UnknownBurst)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Close stops the background refresh and waits for fetches in flight.
func (c *Cache) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

// Generation counts how often a document in force was replaced by a
// different one. Whoever caches results reached with this cache's
// collateral (the RA-TLS verdict cache) drops them when it changes, so a
// revocation or a TCB recovery takes effect at once, not when the cached
// result expires.
func (c *Cache) Generation() uint64 { return c.gen.Load() }

func (c *Cache) inFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.flights)
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	return Stats{Hits: c.stats.hits.Load(), Fetches: c.stats.fetches.Load(), FetchFailures: c.stats.fetchFailures.Load(),
		Rejected: c.stats.rejected.Load(), Grace: c.stats.grace.Load(), Stale: c.stats.stale.Load(),
		Rollbacks: c.stats.rollbacks.Load(), Limited: c.stats.limited.Load(), InFlight: c.inFlight()}
}

// Get returns the collateral for a quote (see Source). While the
// documents are cached and unchanged it returns the same pointer.
func (c *Cache) Get(ctx context.Context, tee, fmspc, ca string) (*dcap.Collateral, Info, error) {
	keys, err := collateralKeys(tee, fmspc, ca)
	if err != nil {
		return nil, Info{}, err
	}
	now := c.now()
	info := Info{FromCache: true, VerifyAt: now}
	var docs [4]*Document
	for i, k := range keys {
		d, how, err := c.document(ctx, k, now, false)
		if err != nil {
			return nil, Info{}, err
		}
		docs[i] = d
		info.FromCache = info.FromCache && how != served
		info.Grace = info.Grace || how == underGrace
		if info.FetchedAt.IsZero() || d.FetchedAt.Before(info.FetchedAt) {
			info.FetchedAt = d.FetchedAt
		}
		if info.NextUpdate.IsZero() || d.Expires.Before(info.NextUpdate) {
			info.NextUpdate = d.Expires
		}
	}
	if info.Grace {
		info.VerifyAt = info.NextUpdate
	}
	col, err := c.assemble(colKey{keys[0].TEE, keys[0].FMSPC, keys[2].CA}, docs)
	if err != nil {
		return nil, Info{}, err
	}
	return col, info, nil
}

// assemble returns the collateral of four documents, the same pointer as
// long as the documents are the same.
func (c *Cache) assemble(ck colKey, docs [4]*Document) (*dcap.Collateral, error) {
	c.amu.Lock()
	defer c.amu.Unlock()
	if a := c.cols[ck]; a != nil && a.docs == docs {
		return a.col, nil
	}
	tcb, qe, pck, root := docs[0], docs[1], docs[2], docs[3]
	col, err := dcap.NewCollateral(dcap.RawCollateral{
		TCBInfoIssuerChain: tcb.IssuerChain, TCBInfo: tcb.Body,
		QEIdentityIssuerChain: qe.IssuerChain, QEIdentity: qe.Body,
		PCKCRLIssuerChain: pck.IssuerChain, PCKCRL: pck.Body,
		RootCACRL: root.Body,
	})
	if err != nil {
		return nil, rejected(Key{}, "", err)
	}
	// The documents were verified one by one; this checks them together
	// (the signing certificates against the root CA CRL). Dates are the
	// caller's: Info says until when.
	if err := c.verify(col, Want{TEE: ck.tee, FMSPC: ck.fmspc, CA: ck.ca}, time.Time{}); err != nil {
		return nil, rejected(Key{}, "", err)
	}
	c.cols[ck] = &assembled{docs: docs, col: col}
	return col, nil
}

type how int

const (
	hit        how = iota // from memory, no fetch
	served                // fetched for this request
	underGrace            // expired, within the grace period
	expired               // expired, for the mirror
)

// Document returns document k for the mirror: cached, or fetched when
// missing or expired. When a fresh copy cannot be had it returns what it
// has even if expired: whoever verifies against it checks the dates.
func (c *Cache) Document(ctx context.Context, k Key) (*Document, error) {
	k, err := k.Normalize()
	if err != nil {
		return nil, err
	}
	d, _, err := c.document(ctx, k, c.now(), true)
	return d, err
}

func (c *Cache) document(ctx context.Context, k Key, now time.Time, mirror bool) (*Document, how, error) {
	c.mu.Lock()
	// No slot is made for a key asked for until its fetch is admitted, so
	// that requests for documents that do not exist leave nothing behind.
	s := c.slots[k]
	var d *Document
	if s != nil {
		d = s.doc
	}
	if d != nil && !d.expiredAt(now) {
		due := c.client != nil && c.due(s, d, now)
		if due {
			s.attempt = now
		}
		c.mu.Unlock()
		if due {
			c.start(ctx, k, background) // refresh in the background; serve what is cached
		}
		c.stats.hits.Add(1)
		return d, hit, nil
	}
	var ferr error
	switch {
	case c.client == nil:
		ferr = &Error{Key: k, Reason: ErrNotFound, Detail: "offline, and not in the bundle"}
		if d != nil {
			ferr = nil
		}
	case s != nil && s.err != nil && c.o.FailureTTL > 0 && now.Sub(s.errAt) < c.o.FailureTTL:
		ferr = s.err // a fetch failed moments ago
	}
	c.mu.Unlock()
	if ferr == nil && c.client != nil {
		var nd *Document
		nd, ferr = c.wait(ctx, k, c.start(ctx, k, request))
		if ferr == nil {
			return nd, served, nil
		}
	}
	if d == nil {
		return nil, 0, ferr
	}
	if mirror {
		return d, expired, nil
	}
	if c.o.Grace > 0 && !now.After(d.Expires.Add(c.o.Grace)) {
		c.stats.grace.Add(1)
		c.mu.Lock()
		s = c.slot(k)
		warn := s.graceWarned.IsZero() || now.Sub(s.graceWarned) >= time.Minute || now.Before(s.graceWarned)
		if warn {
			s.graceWarned = now
		}
		c.mu.Unlock()
		if warn {
			c.log.Warn("collateral: serving an expired document under the grace period", "document", k.String(),
				"expired", d.Expires, "grace_until", d.Expires.Add(c.o.Grace), "cause", errString(ferr))
		}
		return d, underGrace, nil
	}
	c.stats.stale.Add(1)
	detail := fmt.Sprintf("expired %s", d.Expires.UTC().Format(time.RFC3339))
	if c.o.Grace > 0 {
		detail += fmt.Sprintf(", grace period of %s over", c.o.Grace)
	}
	if c.client == nil {
		detail += "; offline, no refresh possible"
	} else {
		detail += "; refresh failed"
	}
	return nil, 0, &Error{Key: k, Reason: ErrExpired, Detail: detail, Err: ferr}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (c *Cache) slot(k Key) *slot {
	s := c.slots[k]
	if s == nil {
		s = &slot{}
		c.slots[k] = s
	}
	return s
}

// due reports whether a valid document should be refreshed now (c.mu held).
func (c *Cache) due(s *slot, d *Document, now time.Time) bool {
	lead := c.o.RefreshLead
	if f := time.Duration(c.o.RefreshFraction * float64(d.Expires.Sub(d.IssueDate))); f > lead {
		lead = f
	}
	if now.Before(d.Expires.Add(-lead)) {
		return false
	}
	return s.attempt.IsZero() || now.Sub(s.attempt) >= c.o.MinRefreshInterval || now.Before(s.attempt)
}

// How a fetch is started.
type startMode int

const (
	// request: a caller waits for it; it is admitted by the limits on
	// unknown documents and the caller's fetch gate, and canceled when
	// every caller waiting for it has given up.
	request startMode = iota
	// explicit: a caller waits for it (Cache.Fetch, an operator's
	// command); not limited, canceled when its callers give up.
	explicit
	// background: a refresh nobody waits for; it runs to completion (its
	// client's timeouts bound it) unless the cache is closed.
	background
)

// start begins a fetch of k, or joins the one in flight. Every fetch that
// a caller waits for must be followed by wait, which accounts for the
// caller's leaving.
func (c *Cache) start(ctx context.Context, k Key, mode startMode) *flight {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.flights[k]; f != nil {
		if mode == background {
			f.background = true
		} else {
			f.waiters++
		}
		return f
	}
	failed := func(err error) *flight {
		f := &flight{done: make(chan struct{}), err: err}
		close(f.done)
		return f
	}
	if c.closed {
		return failed(&Error{Key: k, Reason: ErrClosed})
	}
	if mode == request {
		if err := c.admit(ctx, k); err != nil {
			c.stats.limited.Add(1)
			return failed(err)
		}
	}
	fctx, cancel := context.WithCancel(c.ctx)
	f := &flight{done: make(chan struct{}), cancel: cancel, background: mode == background}
	if mode != background {
		f.waiters = 1
	}
	c.flights[k] = f
	c.slot(k).attempt = c.now()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer cancel()
		// At most MaxFetches fetches reach the service at once; the others
		// queue here, and leave the queue when nobody waits for them.
		select {
		case c.sem <- struct{}{}:
			f.doc, f.err = c.fetch(fctx, k)
			<-c.sem
		case <-fctx.Done():
			f.err = &Error{Key: k, Reason: ErrUnavailable, Detail: "abandoned while queued for a fetch slot", Err: fctx.Err()}
		}
		c.mu.Lock()
		if c.flights[k] == f {
			delete(c.flights, k)
		}
		c.mu.Unlock()
		close(f.done)
	}()
	return f
}

// admit decides whether a caller may start a fetch of k (c.mu held): a
// document never had counts against the limit on unknown documents, and
// the caller's fetch gate (the mirror's per-client limit) must agree.
func (c *Cache) admit(ctx context.Context, k Key) error {
	if gate, _ := ctx.Value(fetchGateKey{}).(FetchGate); gate != nil {
		if err := gate(k); err != nil {
			return err
		}
	}
	if s := c.slots[k]; (s == nil || s.doc == nil) && c.unknown != nil && !c.unknown.Allow() {
		return &Error{Key: k, Reason: ErrBusy, Detail: fmt.Sprintf("more documents never fetched before were asked for than the limit (%d at once, then one per %s)",
			c.o.UnknownBurst, c.o.UnknownEvery)}
	}
	return nil
}

// FetchGate decides whether a request may start an upstream fetch of k
// (not join one in flight, nor be served from the cache). It returns an
// error to refuse, such as an *Error with reason ErrRateLimited.
type FetchGate func(k Key) error

type fetchGateKey struct{}

// WithFetchGate returns a context under which Cache.Document and Cache.Get
// ask gate before they start a fetch. The mirror's handler sets a gate per
// client.
func WithFetchGate(ctx context.Context, gate FetchGate) context.Context {
	return context.WithValue(ctx, fetchGateKey{}, gate)
}

// wait waits for f; if ctx ends first the caller leaves, and a fetch that
// nobody waits for any more is canceled (unless it is a background
// refresh).
func (c *Cache) wait(ctx context.Context, k Key, f *flight) (*Document, error) {
	select {
	case <-f.done:
		return f.doc, f.err
	case <-ctx.Done():
		c.mu.Lock()
		f.waiters--
		if f.waiters <= 0 && !f.background && f.cancel != nil {
			f.cancel()
			if c.flights[k] == f {
				delete(c.flights, k) // a new request starts afresh
			}
		}
		c.mu.Unlock()
		return nil, &Error{Key: k, Reason: ErrUnavailable, Detail: "gave up waiting for the fetch", Err: ctx.Err()}
	}
}

// fetch fetches, verifies and stores document k.
func (c *Cache) fetch(ctx context.Context, k Key) (*Document, error) {
	resp, err := c.client.Fetch(ctx, k)
	if err != nil && ctx.Err() != nil {
		// Canceled: nobody waits for it any more, or the cache closed.
		// Not the service's failure; not remembered, not logged.
		return nil, err
	}
	now := c.now()
	var d *Document
	if err == nil {
		d, err = ParseDocument(k, resp.Body, resp.IssuerChain, resp.URL, now)
		if err == nil {
			if verr := c.verify(d.col, k.want(), now); verr != nil {
				err = rejected(k, resp.URL, verr)
			}
		}
		if err != nil {
			c.stats.rejected.Add(1)
		}
	} else {
		c.stats.fetchFailures.Add(1)
	}
	c.mu.Lock()
	s := c.slot(k)
	if err != nil {
		s.err, s.errAt = err, now
		c.mu.Unlock()
		c.log.Warn("collateral: fetch failed", "document", k.String(), "error", err)
		return nil, err
	}
	old := s.doc
	if old != nil && !old.sameContent(d) {
		if rb := rollback(d, old); rb != nil {
			// Older than the copy in force (a lagging or hostile PCCS, a
			// replay): never go back. The copy in force stays, expired or
			// not; an expired one is not served as fresh.
			c.stats.rollbacks.Add(1)
			s.err, s.errAt = rb, now
			c.mu.Unlock()
			c.log.Warn("collateral: refused a document older than the copy in force; keeping the copy in force",
				"document", k.String(), "reason", rb.Detail, "url", resp.URL)
			if old.expiredAt(now) {
				return nil, rb
			}
			return old, nil
		}
	}
	c.stats.fetches.Add(1)
	s.err = nil
	if old != nil && old.sameContent(d) {
		d = old // nothing new: keep the pointer
	} else {
		s.doc = d
		if old != nil {
			// A verdict reached with the old document (a PCK not yet
			// on the CRL, a TCB level not yet out of date) must not
			// outlive it.
			c.gen.Add(1)
		}
	}
	c.mu.Unlock()
	if d != old && c.o.Dir != "" {
		c.persist(d)
	}
	return d, nil
}

// persist writes d unless a newer document replaced it meanwhile.
func (c *Cache) persist(d *Document) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.mu.Lock()
	current := c.slots[d.Key].doc == d
	c.mu.Unlock()
	if !current {
		return
	}
	// Another writer of the directory (a second process, an operator's
	// import) may have put a newer copy there: do not go back on disk
	// either.
	if disk := c.readVerified(c.o.Dir, d.Key); disk != nil {
		if rb := rollback(d, disk); rb != nil {
			c.stats.rollbacks.Add(1)
			c.log.Warn("collateral: the disk cache holds a newer copy; not overwriting it",
				"document", d.Key.String(), "reason", rb.Detail)
			return
		}
	}
	if err := writeDocument(c.o.Dir, d); err != nil {
		c.log.Error("collateral: cannot write the disk cache", "document", d.Key.String(), "error", err)
	}
}

// Fetch fetches document k now, whatever is cached, and caches it if it
// verifies. `asps collateral fetch` uses it to fill a bundle.
func (c *Cache) Fetch(ctx context.Context, k Key) (*Document, error) {
	k, err := k.Normalize()
	if err != nil {
		return nil, err
	}
	if c.client == nil {
		return nil, &Error{Key: k, Reason: ErrNotFound, Detail: "offline"}
	}
	return c.wait(ctx, k, c.start(ctx, k, explicit))
}

// RefreshDue refreshes, and waits for, every cached document that is due
// for a refresh (the background loop's work, exposed for tests and for
// callers without the loop). It returns the failures joined.
func (c *Cache) RefreshDue(ctx context.Context) error {
	if c.client == nil {
		return nil
	}
	now := c.now()
	c.mu.Lock()
	var keys []Key
	for k, s := range c.slots {
		switch {
		case s.doc != nil:
			if c.due(s, s.doc, now) {
				keys = append(keys, k)
			}
		case c.flights[k] == nil && (c.o.FailureTTL <= 0 || now.Sub(s.errAt) >= c.o.FailureTTL):
			// Nothing cached and the failure forgotten: drop the slot, so
			// that requests for FMSPCs that do not exist leave nothing.
			delete(c.slots, k)
		}
	}
	c.mu.Unlock()
	fs := make([]*flight, len(keys))
	for i, k := range keys {
		fs[i] = c.start(ctx, k, background)
	}
	var errs []error
	for i, f := range fs {
		if _, err := c.wait(ctx, keys[i], f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Cache) loop(iv time.Duration) {
	defer c.wg.Done()
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			_ = c.RefreshDue(c.ctx) // failures are logged by fetch
		}
	}
}

// Documents returns the cached documents, sorted by key.
func (c *Cache) Documents() []*Document {
	c.mu.Lock()
	var out []*Document
	for _, s := range c.slots {
		if s.doc != nil {
			out = append(out, s.doc)
		}
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key.Path() < out[j].Key.Path() })
	return out
}

// load reads the documents of a bundle directory. strict: any bad file is
// an error; else it is logged and skipped.
func (c *Cache) load(dir string, strict bool) error {
	var errs []error
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			errs = append(errs, err)
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return nil
		}
		k, ok := keyFromPath(filepath.ToSlash(rel))
		if !ok {
			return nil // not a document file (README, temporary files, subdirectories)
		}
		var d *Document
		if e.IsDir() {
			// Not descended into: whatever it holds is no document.
			err = &fs.PathError{Op: "read", Path: p, Err: fmt.Errorf("%w: a directory", ErrNotRegularFile)}
		} else {
			// Symlinks are followed; FIFOs, devices and oversized files are
			// refused by ReadFile before they are read.
			d, err = readDocument(dir, k)
		}
		if err == nil {
			if verr := c.verify(d.col, k.want(), time.Time{}); verr != nil {
				err = rejected(k, "", verr)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", rel, err))
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		c.slot(k).doc = d
		return nil
	})
	if err != nil {
		return fmt.Errorf("collateral: reading %s: %w", dir, err)
	}
	if len(errs) > 0 {
		if strict {
			return fmt.Errorf("collateral: bundle %s: %w", dir, errors.Join(errs...))
		}
		for _, e := range errs {
			c.log.Warn("collateral: ignoring a cached document", "dir", dir, "error", e)
		}
	}
	return nil
}

// readVerified reads document k from dir and verifies it (except for its
// dates); nil if it is absent or does not verify.
func (c *Cache) readVerified(dir string, k Key) *Document {
	d, err := readDocument(dir, k)
	if err != nil || c.verify(d.col, k.want(), time.Time{}) != nil {
		return nil
	}
	return d
}

func readDocument(dir string, k Key) (*Document, error) {
	b, err := ReadFile(filepath.Join(dir, filepath.FromSlash(k.Path())), MaxDocumentFileLen)
	if err != nil {
		return nil, err
	}
	return parseDocumentFile(k, b)
}

// writeDocument writes d into a bundle directory, atomically.
func writeDocument(dir string, d *Document) error {
	b, err := d.MarshalJSON()
	if err != nil {
		return err
	}
	p := filepath.Join(dir, filepath.FromSlash(d.Key.Path()))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(append(b, '\n'))
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(f.Name(), 0o644)
	}
	if werr == nil {
		werr = os.Rename(f.Name(), p)
	}
	if werr != nil {
		_ = os.Remove(f.Name())
	}
	return werr
}
