package server

import (
	"container/list"
	"net"
	"sync"
	"time"
)

// connLimiter is a net.Listener that bounds the connections an anonymous
// crowd can hold: at most maxTotal in all and maxPerIP per source
// address (an IPv4 address, an IPv6 /64; an IPv6 /48 holds prefixFactor
// times as many, so rotating over the /64s of one allocation does not
// multiply the cap), and a connection whose peer has not been attested within
// unauthLife is closed. When the total is reached, the oldest connection
// not yet attested makes room for the new one, so a flood of idle
// connections cannot lock attested workloads out; only attested
// connections are never evicted.
type connLimiter struct {
	net.Listener
	maxTotal, maxPerIP int
	unauthLife         time.Duration
	metrics            *Metrics

	mu     sync.Mutex
	total  int
	perIP  map[string]int
	byAddr map[string]*limitedConn
	unauth *list.List // of *limitedConn, oldest first
}

type limitedConn struct {
	net.Conn
	l     *connLimiter
	ip    string
	pfx   string // the IPv6 /48, "" for IPv4
	key   string
	el    *list.Element // in l.unauth while not attested
	timer *time.Timer
	once  sync.Once
}

func newConnLimiter(l net.Listener, maxTotal, maxPerIP int, unauthLife time.Duration, m *Metrics) *connLimiter {
	return &connLimiter{Listener: l, maxTotal: maxTotal, maxPerIP: maxPerIP, unauthLife: unauthLife, metrics: m,
		perIP: map[string]int{}, byAddr: map[string]*limitedConn{}, unauth: list.New()}
}

// hostOf is the source a per-address limit counts: the IP address, and
// for IPv6 its /64 (one host commonly holds a whole /64).
func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(h); ip != nil && ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return h
}

// Accept returns the next connection within the limits; connections over
// a limit are closed here and never reach TLS.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := l.admit(c); lc != nil {
			return lc, nil
		}
	}
}

func (l *connLimiter) admit(c net.Conn) *limitedConn {
	ip, pfx := failSources(c.RemoteAddr())
	var evict *limitedConn
	l.mu.Lock()
	if l.maxPerIP > 0 && (l.perIP[ip] >= l.maxPerIP || pfx != "" && l.perIP[pfx] >= l.maxPerIP*prefixFactor) {
		l.mu.Unlock()
		l.metrics.connRefused("per_ip_limit")
		c.Close()
		return nil
	}
	if l.maxTotal > 0 && l.total >= l.maxTotal {
		front := l.unauth.Front()
		if front == nil {
			l.mu.Unlock()
			l.metrics.connRefused("total_limit")
			c.Close()
			return nil
		}
		evict = front.Value.(*limitedConn)
		l.forgetLocked(evict)
	}
	lc := &limitedConn{Conn: c, l: l, ip: ip, pfx: pfx, key: c.RemoteAddr().String()}
	l.total++
	l.perIP[ip]++
	if pfx != "" {
		l.perIP[pfx]++
	}
	l.byAddr[lc.key] = lc
	lc.el = l.unauth.PushBack(lc)
	if l.unauthLife > 0 {
		lc.timer = time.AfterFunc(l.unauthLife, func() {
			l.mu.Lock()
			expired := lc.el != nil
			l.mu.Unlock()
			if expired {
				l.metrics.connClosed("unauthenticated_lifetime")
				lc.Close()
			}
		})
	}
	l.mu.Unlock()
	l.metrics.connOpened()
	if evict != nil {
		l.metrics.connClosed("evicted_for_new_connection")
		evict.Conn.Close()
	}
	return lc
}

// forgetLocked removes c from the books (once).
func (l *connLimiter) forgetLocked(c *limitedConn) {
	if l.byAddr[c.key] != c {
		return
	}
	delete(l.byAddr, c.key)
	l.total--
	for _, k := range []string{c.ip, c.pfx} {
		if k == "" {
			continue
		}
		if l.perIP[k]--; l.perIP[k] <= 0 {
			delete(l.perIP, k)
		}
	}
	if c.el != nil {
		l.unauth.Remove(c.el)
		c.el = nil
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	l.metrics.connGone()
}

// attested marks the connection of the peer at addr (its remote address)
// as attested: it is no longer subject to the unauthenticated lifetime or
// to eviction.
func (l *connLimiter) attested(addr string) {
	if l == nil || addr == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.byAddr[addr]
	if c == nil || c.el == nil {
		return
	}
	l.unauth.Remove(c.el)
	c.el = nil
	if c.timer != nil {
		c.timer.Stop()
	}
}

// isAttested reports whether addr's connection is open and attested.
func (l *connLimiter) isAttested(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.byAddr[addr]
	return c != nil && c.el == nil
}

func (l *connLimiter) counts() (total, unauth int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.unauth.Len()
}

func (c *limitedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.forgetLocked(c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
