package collateral

import (
	"net"
	"net/netip"
	"sync"
)

// Connection caps of the mirror's listener (LimitConnections). Its clients
// need not identify themselves; the server's timeouts (NewMirrorServer)
// bound how long each connection lives, these how many one client — an
// IPv4 address, an IPv6 /64 — and all clients together may hold.
const (
	MaxMirrorConnsPerClient = 32
	MaxMirrorConns          = 4096
)

// LimitConnections wraps the mirror's listener: a client's connection over
// MaxMirrorConnsPerClient, or any over MaxMirrorConns, is closed at once
// (never queued, so other clients are not kept waiting behind it). Without
// it one address could hold connections until the process runs out of
// file descriptors, and with them the upstream fetches and cache files.
func LimitConnections(l net.Listener) net.Listener {
	return &connLimit{Listener: l, per: map[netip.Prefix]int{}}
}

type connLimit struct {
	net.Listener
	mu    sync.Mutex
	total int
	per   map[netip.Prefix]int
}

func (l *connLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		p := clientOf(c.RemoteAddr().String())
		l.mu.Lock()
		over := l.total >= MaxMirrorConns || l.per[p] >= MaxMirrorConnsPerClient
		if !over {
			l.total++
			l.per[p]++
		}
		l.mu.Unlock()
		if over {
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, l: l, p: p}, nil
	}
}

type limitedConn struct {
	net.Conn
	l    *connLimit
	p    netip.Prefix
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.total--
		if c.l.per[c.p]--; c.l.per[c.p] <= 0 {
			delete(c.l.per, c.p)
		}
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
