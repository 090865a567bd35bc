package client_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/client"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/policy"
	"github.com/asps-project/asps/ratls"
)

var (
	enc    = strings.Repeat("5e", 32)
	signer = strings.Repeat("51", 32)
	td     = strings.Repeat("7d", 48)
	rtmr   = strings.Repeat("71", 48)
	rtmr2  = strings.Repeat("72", 48)
)

func u16(v uint16) *uint16 { return &v }

// TestServerShorthandsCannotExpressLess: each shorthand builds a policy
// through policy.Parse, so it is refused where a policy file would be, and
// carries the policy defaults where accepted.
func TestServerShorthandsCannotExpressLess(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   client.ServerIdentity
		want error
	}{
		{"mr_td alone", client.ServerIdentity{MrTd: td}, policy.ErrNoSelector},
		{"mr_signer without product id", client.ServerIdentity{MrSigner: signer}, policy.ErrMissingField},
		{"all-zero mr_enclave", client.ServerIdentity{MrEnclave: strings.Repeat("00", 32)}, policy.ErrBadMeasurement},
		{"injection in a value", client.ServerIdentity{MrEnclave: enc + "\n    allow_debug: true"}, policy.ErrBadMeasurement},
		{"product id without a measurement", client.ServerIdentity{IsvProdID: u16(1)}, policy.ErrNoSelector},
		{"sgx and tdx", client.ServerIdentity{MrEnclave: enc, MrTd: td, Rtmr: [3]string{1: rtmr}}, client.ErrServerPolicy},
		{"nothing", client.ServerIdentity{}, client.ErrServerPolicy},
		{"mr_enclave", client.ServerIdentity{MrEnclave: enc}, nil},
		{"mr_signer and product id", client.ServerIdentity{MrSigner: signer, IsvProdID: u16(1), MinIsvSvn: 2}, nil},
		{"mr_td and rtmr1 alone", client.ServerIdentity{MrTd: td, Rtmr: [3]string{1: rtmr}}, policy.ErrNoSelector},
		{"mr_td, rtmr1 and rtmr2", client.ServerIdentity{MrTd: td, Rtmr: [3]string{1: rtmr, 2: rtmr2}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.id.Policy()
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a := p.Apps[0]
			if len(p.Apps) != 1 || p.AllowSimulated || a.AllowDebug || len(a.AdvisoryIDs) != 0 || len(a.TCBStatuses) != 1 || a.TCBStatuses[0] != claims.StatusUpToDate {
				t.Fatalf("defaults not applied: %+v %+v", p, a)
			}
		})
	}
}

// TestParseServerPolicy: a server policy needs no secrets list, keeps hex
// written as a number as written, and admits simulated servers only in dev
// mode; everything else is the policy package's parser.
func TestParseServerPolicy(t *testing.T) {
	digits := strings.Repeat("1", 64)
	p, err := client.ParseServerPolicy([]byte("apps:\n  - id: s\n    tee: sgx\n    mr_enclave: "+digits+"\n    tcb_statuses: [UpToDate, SWHardeningNeeded]\n"), "yaml", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Apps[0].SGX.MrEnclave.String(); got != digits {
		t.Fatalf("mr_enclave %s, want %s", got, digits)
	}
	if _, err := client.ParseServerPolicy([]byte(`{"apps": [{"id": "s", "tee": "sgx", "mr_enclave": "`+enc+`"}]}`), "json", false); err != nil {
		t.Fatalf("JSON without secrets: %v", err)
	}
	for _, tc := range []struct {
		name, doc string
		dev       bool
		want      error
	}{
		{"simulated outside dev mode", "allow_simulated: true\napps:\n  - {id: s, tee: sgx, mr_enclave: " + enc + "}\n", false, client.ErrServerPolicy},
		{"two documents", "apps:\n  - {id: s, tee: sgx, mr_enclave: " + enc + "}\n---\napps: []\n", false, policy.ErrSyntax},
		{"duplicate key", `{"apps": [{"id": "s", "tee": "sgx", "mr_enclave": "` + enc + `", "mr_enclave": "` + signer + `"}]}`, false, policy.ErrSyntax},
		{"unknown field", "apps:\n  - {id: s, tee: sgx, mr_enclave: " + enc + ", mr_enclve: x}\n", false, policy.ErrUnknownField},
		{"no apps", "apps: []\n", false, policy.ErrMissingField},
		{"mr_td alone", "apps:\n  - {id: s, tee: tdx, mr_td: " + td + "}\n", true, policy.ErrNoSelector},
	} {
		if _, err := client.ParseServerPolicy([]byte(tc.doc), "", tc.dev); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestServerRefusalIsTyped: against a dev server in a simulated enclave
// on an OutOfDate platform, the client's call fails with a
// *ServerRefusedError carrying the policy's reason.
func TestServerRefusalIsTyped(t *testing.T) {
	pki, err := sim.DefaultPKI()
	if err != nil {
		t.Fatal(err)
	}
	var id sim.Identity
	copy(id.MrEnclave[:], bytes.Repeat([]byte{0x5e}, 32))
	att, err := sim.NewAttester(sim.Options{PKI: pki, TEE: claims.SGX, Identity: id, TCBStatus: claims.StatusOutOfDate})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	env, err := devmode.Start(ctx, devmode.Options{ServerAttester: att})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	p, err := client.ServerIdentity{MrEnclave: enc, AllowSimulated: true}.Policy()
	if err != nil {
		t.Fatal(err)
	}
	judge, err := client.NewServerJudge(p)
	if err != nil {
		t.Fatal(err)
	}
	v, err := env.ServerVerifierWith(ratls.VerifyOptions{Check: judge.Check, AllowDebug: judge.AllowDebug()})
	if err != nil {
		t.Fatal(err)
	}
	a, err := devmode.Attester(env.PKI, claims.SGX, devmode.DemoIdentity(claims.SGX))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, client.Config{Server: env.Addr, Attester: a, ServerAuth: ratls.ServerByRATLS(v), ServerJudge: judge})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.GetSecrets(ctx, "demo-key")
	var refused *client.ServerRefusedError
	if !errors.As(err, &refused) || !errors.Is(err, policy.ErrTCBStatusNotAllowed) {
		t.Fatalf("err %v, want a ServerRefusedError for the TCB status", err)
	}
}

// FuzzParseServerPolicy: an accepted server policy has apps and, outside
// dev mode, never admits simulated servers; where the policy package
// accepts the same bytes itself, both read the same apps.
func FuzzParseServerPolicy(f *testing.F) {
	for _, s := range []string{
		"apps:\n  - {id: s, tee: sgx, mr_enclave: " + enc + "}\n",
		"apps:\n  - {id: s, tee: sgx, mr_enclave: " + enc + ", secrets: {a: b}}\n",
		`{"apps": [{"id": "s", "tee": "tdx", "mr_td": "` + td + `", "rtmr1": "` + rtmr + `", "rtmr2": "` + rtmr2 + `"}]}`,
		"allow_simulated: true\napps: []\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := client.ParseServerPolicy(b, "", false)
		if err != nil {
			return
		}
		if len(p.Apps) == 0 || p.AllowSimulated {
			t.Fatalf("accepted %q: %d apps, allow_simulated %v", b, len(p.Apps), p.AllowSimulated)
		}
		q, err := policy.Parse(b, "")
		if err != nil {
			return
		}
		if len(q.Apps) != len(p.Apps) {
			t.Fatalf("%q: %d apps, the policy package reads %d", b, len(p.Apps), len(q.Apps))
		}
		for i := range p.Apps {
			a, b := p.Apps[i], q.Apps[i]
			if a.ID != b.ID || a.TEE != b.TEE || a.AllowDebug != b.AllowDebug || strings.Join(a.TCBStatuses, ",") != strings.Join(b.TCBStatuses, ",") {
				t.Fatalf("app %d differs: %+v vs %+v", i, a, b)
			}
		}
	})
}
