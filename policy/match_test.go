package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/asps-project/asps/claims"
)

const matrixPolicy = `apps:
  - id: web
    tee: sgx
    mr_enclave: ` + hexE1 + `
    isv_prod_id: 1
    min_isv_svn: 2
    tcb_statuses: [UpToDate, SWHardeningNeeded]
    advisory_ids: [INTEL-SA-00615]
    secrets: {tls_key: kv/web/tls_key}
  - id: signer
    tee: sgx
    runtime: occlum
    mr_signer: ` + hexS1 + `
    isv_prod_id: 7
    allow_debug: true
    secrets: {image_key: occlum/1/image_key}
  - id: lax
    tee: sgx
    mr_enclave: ` + hexE2 + `
    tcb_statuses: [UpToDate, OutOfDate]
    advisory_ids: ["*"]
    secrets: {a: b}
  - id: cfg
    tee: sgx
    mr_enclave: ` + hexE3 + `
    config_id: ` + hexE3 + hexE3 + `
    min_config_svn: 3
    secrets: {a: b}
  - id: td
    tee: tdx
    mr_td: ` + hexT1 + `
    rtmr1: ` + hexR1 + `
    rtmr2: ` + hexK2 + `
    mr_owner: ` + hexO1 + `
    secrets: {disk: kv/td/disk}
`

func TestMatchMatrix(t *testing.T) {
	p := mustParse(t, matrixPolicy, "yaml")
	sgx := func(mut func(c *claims.Claims)) *claims.Claims {
		c := sgxClaims(t, hexE1, hexS1, 1, 2)
		if mut != nil {
			mut(c)
		}
		return c
	}
	signer := func(mut func(c *claims.Claims)) *claims.Claims {
		c := sgxClaims(t, hexEx, hexS1, 7, 0)
		c.Runtime = "occlum"
		if mut != nil {
			mut(c)
		}
		return c
	}
	tdx := func(mut func(c *claims.Claims)) *claims.Claims {
		c := tdxClaims(t, hexT1, hexR1)
		c.TDX.MrOwner = mustHex(t, hexO1)
		if mut != nil {
			mut(c)
		}
		return c
	}
	tests := []struct {
		name    string
		claims  *claims.Claims
		app     string // the app matched, or named by the denial
		reason  error  // nil: a match
		field   string // for ErrNoMatchingApp: a field that differed
		details []string
	}{
		{name: "sgx exact", claims: sgx(nil), app: "web"},
		{name: "higher svn", claims: sgx(func(c *claims.Claims) { c.SGX.IsvSvn = 9 }), app: "web"},
		{name: "accepted status and advisory", claims: sgx(func(c *claims.Claims) {
			c.TCBStatus, c.AdvisoryIDs = claims.StatusSWHardeningNeeded, []string{"intel-sa-00615"}
		}), app: "web"},
		{name: "advisory not tolerated", claims: sgx(func(c *claims.Claims) {
			c.TCBStatus, c.AdvisoryIDs = claims.StatusSWHardeningNeeded, []string{"INTEL-SA-00615", "INTEL-SA-00289"}
		}), app: "web", reason: ErrAdvisoryNotAllowed, details: []string{`"INTEL-SA-00289"`, "tolerates INTEL-SA-00615"}},
		{name: "status not accepted", claims: sgx(func(c *claims.Claims) { c.TCBStatus = claims.StatusOutOfDate }),
			app: "web", reason: ErrTCBStatusNotAllowed, details: []string{`"OutOfDate"`, "accepts UpToDate, SWHardeningNeeded"}},
		{name: "no status in claims", claims: sgx(func(c *claims.Claims) { c.TCBStatus = "" }), app: "web", reason: ErrTCBStatusNotAllowed},
		{name: "debug refused", claims: sgx(func(c *claims.Claims) { c.Debug = true }), app: "web", reason: ErrDebugNotAllowed, details: []string{"allow_debug"}},
		{name: "svn too low", claims: sgx(func(c *claims.Claims) { c.SGX.IsvSvn = 1 }), app: "web", reason: ErrNoMatchingApp, field: "isv_svn",
			details: []string{`isv_svn 1 not allowed (app "web" expects >= 2)`}},
		{name: "wrong product", claims: sgx(func(c *claims.Claims) { c.SGX.IsvProdID = 2 }), app: "web", reason: ErrNoMatchingApp, field: "isv_prod_id"},
		{name: "unknown enclave", claims: sgx(func(c *claims.Claims) { c.SGX.MrEnclave = mustHex(t, hexEx) }), app: "web", reason: ErrNoMatchingApp, field: "mr_enclave",
			details: []string{"mr_enclave " + hexEx + ` not allowed (app "web" expects 88e2b4e857484d7a…)`}},
		{name: "signer, debug allowed", claims: signer(func(c *claims.Claims) { c.Debug = true }), app: "signer"},
		{name: "signer, wrong runtime", claims: signer(func(c *claims.Claims) { c.Runtime = "gramine" }), app: "signer", reason: ErrNoMatchingApp, field: "runtime",
			details: []string{`runtime "gramine" not allowed (app "signer" expects "occlum")`}},
		{name: "signer, wrong product", claims: signer(func(c *claims.Claims) { c.SGX.IsvProdID = 8 }), app: "signer", reason: ErrNoMatchingApp, field: "isv_prod_id"},
		{name: "wildcard advisories, out of date", claims: sgx(func(c *claims.Claims) {
			c.SGX.MrEnclave, c.SGX.IsvProdID = mustHex(t, hexE2), 99
			c.TCBStatus, c.AdvisoryIDs = claims.StatusOutOfDate, []string{"INTEL-SA-00001", "INTEL-SA-00002"}
		}), app: "lax"},
		{name: "config id and svn", claims: sgx(func(c *claims.Claims) {
			c.SGX.MrEnclave, c.SGX.ConfigID, c.SGX.ConfigSvn = mustHex(t, hexE3), mustHex(t, hexE3+hexE3), 3
		}), app: "cfg"},
		{name: "config svn too low", claims: sgx(func(c *claims.Claims) {
			c.SGX.MrEnclave, c.SGX.ConfigID, c.SGX.ConfigSvn = mustHex(t, hexE3), mustHex(t, hexE3+hexE3), 2
		}), app: "cfg", reason: ErrNoMatchingApp, field: "config_svn"},
		{name: "config id differs", claims: sgx(func(c *claims.Claims) {
			c.SGX.MrEnclave, c.SGX.ConfigSvn = mustHex(t, hexE3), 3
		}), app: "cfg", reason: ErrNoMatchingApp, field: "config_id"},
		{name: "simulated refused", claims: sgx(func(c *claims.Claims) { c.Simulated = true }), reason: ErrSimulatedNotAllowed},
		{name: "tdx exact", claims: tdx(nil), app: "td"},
		{name: "tdx rtmr1 differs", claims: tdx(func(c *claims.Claims) { c.TDX.Rtmr1 = mustHex(t, hexZ2) }), app: "td", reason: ErrNoMatchingApp, field: "rtmr1"},
		{name: "tdx owner differs", claims: tdx(func(c *claims.Claims) { c.TDX.MrOwner = mustHex(t, hexZ2) }), app: "td", reason: ErrNoMatchingApp, field: "mr_owner"},
		{name: "tdx owner absent", claims: tdx(func(c *claims.Claims) { c.TDX.MrOwner = nil }), app: "td", reason: ErrNoMatchingApp, field: "mr_owner",
			details: []string{"mr_owner (none) not allowed"}},
		{name: "tdx debug", claims: tdx(func(c *claims.Claims) { c.Debug = true }), app: "td", reason: ErrDebugNotAllowed},
		{name: "tdx advisory", claims: tdx(func(c *claims.Claims) { c.AdvisoryIDs = []string{"INTEL-SA-00837"} }), app: "td", reason: ErrAdvisoryNotAllowed,
			details: []string{"tolerates none"}},
		{name: "no claims", claims: nil, reason: ErrBadClaims},
		{name: "sgx without identity", claims: &claims.Claims{TEE: claims.SGX, TCBStatus: "UpToDate"}, reason: ErrBadClaims},
		{name: "tdx without identity", claims: &claims.Claims{TEE: claims.TDX, TCBStatus: "UpToDate"}, reason: ErrBadClaims},
		{name: "unknown tee", claims: &claims.Claims{TEE: "sev-snp", TCBStatus: "UpToDate"}, reason: ErrTEEMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := p.Match(tc.claims)
			if tc.reason == nil {
				if err != nil {
					t.Fatalf("Match: %v", err)
				}
				if a.ID != tc.app {
					t.Fatalf("matched %q, want %q", a.ID, tc.app)
				}
				return
			}
			if a != nil {
				t.Fatalf("matched %q, want %v", a.ID, tc.reason)
			}
			wantReasons(t, err, tc.reason)
			t.Log(err)
			var d *Denial
			if !errors.As(err, &d) {
				t.Fatalf("not a *Denial: %T", err)
			}
			if d.App != tc.app {
				t.Errorf("denial names app %q, want %q", d.App, tc.app)
			}
			if tc.field != "" && !slices.ContainsFunc(d.Mismatches, func(m Mismatch) bool { return m.Field == tc.field }) {
				t.Errorf("mismatches %+v lack %s", d.Mismatches, tc.field)
			}
			for _, frag := range tc.details {
				if !strings.Contains(err.Error(), frag) {
					t.Errorf("message lacks %q:\n%v", frag, err)
				}
			}
		})
	}
}

func TestMatchTEEMismatch(t *testing.T) {
	p := mustParse(t, sgxApp, "yaml")
	_, err := p.Match(tdxClaims(t, hexT1, hexR1))
	wantReasons(t, err, ErrTEEMismatch)
	if errors.Is(err, ErrNoMatchingApp) {
		t.Error("a TEE mismatch is its own reason")
	}
}

func TestMatchSimulatedAllowed(t *testing.T) {
	p := mustParse(t, "allow_simulated: true\n"+sgxApp, "yaml")
	c := sgxClaims(t, hexE1, hexS1, 0, 0)
	c.Simulated = true
	if a, err := p.Match(c); err != nil || a.ID != "web" {
		t.Fatalf("Match: %v %v", a, err)
	}
}

// The first app whose selectors all hold wins, gates included: a debug
// workload skips an app that refuses debug and matches a later one.
func TestMatchOrder(t *testing.T) {
	p := mustParse(t, `apps:
  - {id: prod, tee: sgx, mr_enclave: `+hexE1+`, secrets: {key: prod/key}}
  - {id: dev, tee: sgx, mr_enclave: `+hexE1+`, allow_debug: true, secrets: {key: dev/key}}
  - {id: signer, tee: sgx, mr_signer: `+hexS1+`, isv_prod_id: 0, secrets: {key: any/key}}
`, "yaml")
	c := sgxClaims(t, hexE1, hexS1, 0, 0)
	if a, err := p.Match(c); err != nil || a.ID != "prod" {
		t.Errorf("release: %v %v", a, err)
	}
	c.Debug = true
	if a, err := p.Match(c); err != nil || a.ID != "dev" {
		t.Errorf("debug: %v %v", a, err)
	}
	c = sgxClaims(t, hexEx, hexS1, 0, 0)
	if a, err := p.Match(c); err != nil || a.ID != "signer" {
		t.Errorf("other enclave, same signer: %v %v", a, err)
	}
}

// The closest app is the one with the fewest differing selectors.
func TestMatchClosest(t *testing.T) {
	p := mustParse(t, `apps:
  - {id: far, tee: sgx, mr_enclave: `+hexE2+`, mr_signer: `+hexE3+`, secrets: {a: b}}
  - {id: near, tee: sgx, mr_enclave: `+hexE3+`, mr_signer: `+hexS1+`, secrets: {a: b}}
`, "yaml")
	_, err := p.Match(sgxClaims(t, hexE1, hexS1, 0, 0))
	var d *Denial
	if !errors.As(err, &d) || d.App != "near" || len(d.Mismatches) != 1 || d.Mismatches[0].Field != "mr_enclave" ||
		d.Mismatches[0].Seen != hexE1 || d.Mismatches[0].Expected != hexE3 {
		t.Fatalf("denial %+v", d)
	}
}

func TestAuthorize(t *testing.T) {
	p := mustParse(t, string(docExample(t)), "yaml")
	web, batch := p.App("web"), p.App("batch")
	refs, err := web.Authorize([]string{"tls_key", "db_password", "tls_key"})
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 || refs[0] != (SecretRef{Name: "tls_key", Ref: "kv/web/tls_key"}) || refs[1] != (SecretRef{Name: "db_password", Ref: "kv/web/db"}) {
		t.Errorf("refs %+v", refs)
	}
	refs, err = batch.Authorize([]string{"image_key"})
	if err != nil || len(refs) != 1 || refs[0].Ref != "occlum/1/image_key" || refs[0].Token.Reveal() != exampleToken {
		t.Errorf("batch refs %v %v", refs, err)
	}
	for _, names := range [][]string{{"tls_key", "image_key"}, {"image_key"}, {"TLS_KEY"}, {}, nil} {
		refs, err := web.Authorize(names)
		wantReasons(t, err, ErrSecretNotAllowed)
		if refs != nil {
			t.Errorf("%v: partial result %v", names, refs)
		}
		if len(names) > 0 && !strings.Contains(err.Error(), fmt.Sprintf("%q", names[len(names)-1])) {
			t.Errorf("%v: message does not name the secret: %v", names, err)
		}
		if strings.Contains(err.Error(), "kv/web") {
			t.Errorf("message shows a reference: %v", err)
		}
	}
	_, err = batch.Authorize([]string{"tls_key"})
	if err == nil || strings.Contains(err.Error(), exampleToken) || strings.Contains(err.Error(), "occlum/1") {
		t.Errorf("denial %v", err)
	}
}

func BenchmarkMatch(b *testing.B) {
	p := mustParse(b, matrixPolicy, "yaml")
	c := tdxClaims(b, hexT1, hexR1) // the last app: every other app is tried first
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Match(c); err != nil {
			b.Fatal(err)
		}
	}
}
