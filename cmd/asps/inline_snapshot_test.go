package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/client"
	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/ratls"
	"github.com/asps-project/asps/server"
	"github.com/asps-project/asps/store"
)

// TestAttack_InlineSecretsReadFromMatchedPolicyUnderReload: two Intel ASPS
// policies with inline values ("kms": "none") give app "1" to different
// enclaves, with a different value each. The server is reloaded (what
// SIGHUP does) between them in a loop while both enclaves fetch over
// loopback. An enclave matched under one policy must never receive the
// value the other policy holds for the other enclave: one request sees one
// policy snapshot from match to release. Run it with -race.
func TestAttack_InlineSecretsReadFromMatchedPolicyUnderReload(t *testing.T) {
	enclaveA := sha256.Sum256([]byte("inline snapshot: enclave A"))
	enclaveB := sha256.Sum256([]byte("inline snapshot: enclave B"))
	valueFor := map[[32]byte]string{enclaveA: "the value policy A gives enclave A", enclaveB: "the value policy B gives enclave B"}
	dir := t.TempDir()
	path := filepath.Join(dir, "policy_no_kms.json")
	docs := [2][]byte{}
	for i, e := range [][32]byte{enclaveA, enclaveB} {
		docs[i] = fmt.Appendf(nil, `{"kms":"none","app_list":[{"id":"1","mr_enclave":"%x","secrets":{"k":%q}}]}`, e, valueFor[e])
	}
	if err := os.WriteFile(path, docs[0], 0o600); err != nil {
		t.Fatal(err)
	}
	holder, inline, _, err := loadServerPolicy(path, true, slogDiscard())
	if err != nil {
		t.Fatal(err)
	}

	pki, err := sim.DefaultPKI()
	if err != nil {
		t.Fatal(err)
	}
	platform, err := sim.NewAttester(sim.Options{PKI: pki, TEE: claims.SGX})
	if err != nil {
		t.Fatal(err)
	}
	col, err := platform.Collateral(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	qv := &ratls.DCAPVerifier{Verifier: dcap.NewVerifier(dcap.WithTrustAnchors(pki.Root)),
		Collateral: func(context.Context, *dcap.Quote) (*dcap.Collateral, ratls.CollateralInfo, error) {
			return col, ratls.CollateralInfo{}, nil
		}}
	cert, pin, err := devmode.SelfSignedServerCert("inline snapshot test")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Certificate: cert, Verifier: ratls.NewVerifier(qv, ratls.VerifyOptions{}),
		Policy: holder, Store: store.NewMemory(nil), Inline: inline, Logger: slogDiscard()})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(srv.Stop)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dial := func(e [32]byte) *client.Client {
		a, err := sim.NewAttester(sim.Options{PKI: pki, TEE: claims.SGX, Identity: sim.Identity{MrEnclave: e, MrSigner: devmode.DemoMrSigner}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.Dial(ctx, client.Config{Server: l.Addr().String(), Attester: a, ServerAuth: ratls.ServerByPin(pin)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	// The reloader flips the policy as fast as it can until the fetchers
	// are done; each fetcher makes a bounded number of requests.
	const perFetcher = 300
	var done atomic.Bool
	var reloads atomic.Int64
	reloaderDone := make(chan struct{})
	go func() {
		defer close(reloaderDone)
		for i := 1; !done.Load(); i++ {
			if err := os.WriteFile(path, docs[i%2], 0o600); err != nil {
				t.Error(err)
				return
			}
			if err := holder.Reload(); err != nil {
				t.Error(err)
				return
			}
			reloads.Add(1)
		}
	}()
	var wg sync.WaitGroup
	var served, refused atomic.Int64
	var wrong atomic.Int64
	for _, e := range [][32]byte{enclaveA, enclaveB, enclaveA, enclaveB} {
		c := dial(e)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perFetcher {
				s, err := c.GetSecrets(ctx, "k")
				switch {
				case err == nil:
					served.Add(1)
					if got := string(s[0].Value); got != valueFor[e] {
						if wrong.Add(1) == 1 {
							t.Errorf("enclave %x received %q, which its matched policy never gave it", e[:4], got)
						}
					}
				case status.Code(err) == codes.PermissionDenied:
					refused.Add(1) // matched under the other policy: refused, fine
				default:
					t.Errorf("fetch: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	done.Store(true)
	<-reloaderDone
	t.Logf("%d served, %d refused, %d reloads, %d wrong values", served.Load(), refused.Load(), reloads.Load(), wrong.Load())
	if wrong.Load() > 0 {
		t.Fatalf("%d responses carried another enclave's value", wrong.Load())
	}
	if served.Load() == 0 || refused.Load() == 0 || reloads.Load() < 2 {
		t.Fatalf("the test did not exercise both policies: %d served, %d refused, %d reloads", served.Load(), refused.Load(), reloads.Load())
	}
}
