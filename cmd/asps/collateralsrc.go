package main

import (
	"context"
	"crypto/x509"
	"os"
	"time"

	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/collateral"
	"github.com/asps-project/asps/ratls"
	"github.com/prometheus/client_golang/prometheus"
	flag "github.com/spf13/pflag"
)

// collateralFlags choose where collateral comes from: one file, a bundle
// directory (offline), or a PCS/PCCS with a cache.
type collateralFlags struct {
	file, dir, pccs, apiKey, pccsCA, cacheDir string
	grace                                     time.Duration
	allowHTTP                                 bool
	redirectOrigins                           collateralList
}

func (f *collateralFlags) register(fs *flag.FlagSet, withFile bool) {
	if withFile {
		fs.StringVar(&f.file, "collateral", envDefault("ASPS_COLLATERAL", ""), "collateral `FILE` (dcap-qvl JSON) for every quote [ASPS_COLLATERAL]")
	}
	fs.StringVar(&f.dir, "collateral-dir", envDefault("ASPS_COLLATERAL_DIR", ""), "offline collateral bundle `DIR` (asps collateral fetch/import) [ASPS_COLLATERAL_DIR]")
	fs.StringVar(&f.pccs, "pccs", envDefault("ASPS_PCCS", ""), "Intel PCS or PCCS base `URL` [ASPS_PCCS]")
	fs.StringVar(&f.apiKey, "pccs-api-key", "", "PCS API key (default $ASPS_PCS_API_KEY)")
	fs.StringVar(&f.pccsCA, "pccs-ca", envDefault("ASPS_PCCS_CA", ""), "CA `PEM` for the PCCS's TLS certificate")
	fs.StringVar(&f.cacheDir, "collateral-cache", envDefault("ASPS_COLLATERAL_CACHE", ""), "keep fetched collateral in `DIR` across restarts")
	fs.BoolVar(&f.allowHTTP, "pccs-allow-http", envDefault("ASPS_PCCS_ALLOW_HTTP", "") == "true", "accept a plain-http --pccs off loopback (anyone on the path can replay older collateral and read the API key) [ASPS_PCCS_ALLOW_HTTP=true]")
	fs.Var(&f.redirectOrigins, "pccs-redirect-origin", "also follow PCCS redirects to this `ORIGIN` (https://host[:port]); repeatable. Default: redirects stay on the PCCS's own origin")
	fs.DurationVar(&f.grace, "collateral-grace", 0, "serve collateral up to `D` past its next update when the PCCS is down (each such decision is flagged in the audit record)")
}

func (f *collateralFlags) set() bool { return f.file != "" || f.dir != "" || f.pccs != "" }

// source builds the collateral source; close releases its background work.
func (f *collateralFlags) source(anchors []*x509.Certificate, now func() time.Time) (collateral.Source, func(), error) {
	opts := collateral.Options{TrustAnchors: anchors, Now: now, Grace: f.grace, Dir: f.cacheDir}
	switch {
	case f.file != "":
		s, err := collateral.LoadStatic(f.file)
		return s, func() {}, err
	case f.dir != "":
		b, err := collateral.OpenBundle(f.dir, opts)
		return b, func() {}, err
	case f.pccs != "":
		key := f.apiKey
		if key == "" {
			key = os.Getenv("ASPS_PCS_API_KEY")
		}
		cl, err := collateral.NewClient(collateral.ClientOptions{BaseURL: f.pccs, APIKey: key, CAFile: f.pccsCA,
			AllowHTTP: f.allowHTTP, RedirectOrigins: f.redirectOrigins})
		if err != nil {
			return nil, nil, err
		}
		opts.Client = cl
		c, err := collateral.NewCache(opts)
		if err != nil {
			return nil, nil, err
		}
		return c, func() { c.Close() }, nil
	}
	return nil, nil, &exitError{code: 2, msg: "no collateral source: give --collateral FILE, --collateral-dir DIR or --pccs URL"}
}

// collateralFunc adapts a collateral source to the RA-TLS verifier.
func collateralFunc(src collateral.Source) ratls.CollateralFunc {
	return func(ctx context.Context, q *dcap.Quote) (*dcap.Collateral, ratls.CollateralInfo, error) {
		col, info, err := collateral.GetForQuote(ctx, src, q)
		if err != nil {
			return nil, ratls.CollateralInfo{}, err
		}
		ci := ratls.CollateralInfo{Grace: info.Grace}
		if info.Grace {
			ci.VerifyAt = info.VerifyAt
		}
		return col, ci, nil
	}
}

// collateralGeneration is src's generation function when it has one (a
// PCCS cache: documents in force are replaced while the server runs), for
// ratls.DCAPVerifier.Generation; nil otherwise.
func collateralGeneration(src collateral.Source) func() uint64 {
	if g, ok := src.(interface{ Generation() uint64 }); ok {
		return g.Generation
	}
	return nil
}

// collateralCollector exports the counters of a Cache or Bundle:
// asps_collateral_documents_total{result} (fetched, hit, fetch_failed,
// rejected, grace, stale, rollback_refused, limited) and
// asps_collateral_fetches_in_flight. Other sources export nothing.
func collateralCollector(src collateral.Source) prometheus.Collector {
	st, _ := src.(interface{ Stats() collateral.Stats })
	return &collateralStats{src: st,
		docs: prometheus.NewDesc("asps_collateral_documents_total",
			"Collateral documents by what became of them (rollback_refused: older than the copy in force; limited: a fetch refused by the fetch limits).",
			[]string{"result"}, nil),
		inFlight: prometheus.NewDesc("asps_collateral_fetches_in_flight", "Collateral fetches in flight or queued.", nil, nil),
	}
}

type collateralStats struct {
	src            interface{ Stats() collateral.Stats }
	docs, inFlight *prometheus.Desc
}

func (c *collateralStats) Describe(ch chan<- *prometheus.Desc) { ch <- c.docs; ch <- c.inFlight }

func (c *collateralStats) Collect(ch chan<- prometheus.Metric) {
	if c.src == nil {
		return
	}
	s := c.src.Stats()
	for _, v := range []struct {
		result string
		n      uint64
	}{
		{"fetched", s.Fetches}, {"hit", s.Hits}, {"fetch_failed", s.FetchFailures}, {"rejected", s.Rejected},
		{"grace", s.Grace}, {"stale", s.Stale}, {"rollback_refused", s.Rollbacks}, {"limited", s.Limited},
	} {
		ch <- prometheus.MustNewConstMetric(c.docs, prometheus.CounterValue, float64(v.n), v.result)
	}
	ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(s.InFlight))
}
