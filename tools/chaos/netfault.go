package main

import (
	"context"
	"fmt"
	"strings"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// tcpFaults puts a Toxiproxy TCP proxy (the library, in this process) in
// front of each OpenBao node: the replicas talk to the proxies, and a
// fault adds a toxic to one or all of them — latency, reset_peer (RST on
// every connection with data) or timeout (a black hole: nothing gets
// through, the connection stays open: a partition). What Toxiproxy cannot
// express at the TCP level (HTTP 5xx, a garbage body) stays with the
// HTTP fault proxy in front of the collateral source.
type tcpFaults struct {
	proxies []*toxiproxy.Proxy
}

func newTCPFaults(upstreams []string) (*tcpFaults, error) {
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	f := &tcpFaults{}
	for i, up := range upstreams {
		p := toxiproxy.NewProxy(srv, fmt.Sprintf("openbao%d", i+1), "127.0.0.1:0", strings.TrimPrefix(up, "http://"))
		if err := p.Start(); err != nil {
			f.stop()
			return nil, fmt.Errorf("toxiproxy for %s: %w", up, err)
		}
		f.proxies = append(f.proxies, p)
	}
	return f, nil
}

// addrs returns the proxies' URLs, in the order of the upstreams.
func (f *tcpFaults) addrs() []string {
	var a []string
	for _, p := range f.proxies {
		a = append(a, "http://"+p.Listen)
	}
	return a
}

func (f *tcpFaults) stop() {
	for _, p := range f.proxies {
		p.Stop()
	}
}

// add adds a toxic (Toxiproxy's JSON: type, stream, attributes) to proxy
// i; remove takes it away.
func (f *tcpFaults) add(i int, name, typ string, attrs string) error {
	body := fmt.Sprintf(`{"name":%q,"type":%q,"stream":"downstream","toxicity":1.0,"attributes":%s}`, name, typ, attrs)
	_, err := f.proxies[i].Toxics.AddToxicJson(strings.NewReader(body))
	return err
}

func (f *tcpFaults) remove(i int, name string) error {
	return f.proxies[i].Toxics.RemoveToxic(context.Background(), name)
}
