package store

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var kinds = []error{ErrNotFound, ErrPermissionDenied, ErrUnavailable}

// checkStoreErr asserts that err is an *Error of exactly the given kind,
// that its message names the secret and the reference, and that it holds
// none of the secrets (values and credentials).
func checkStoreErr(t *testing.T, err error, kind error, name, ref string, secrets []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", kind)
	}
	var se *Error
	if !errors.As(err, &se) {
		t.Errorf("error %T is not an *Error: %v", err, err)
	}
	for _, k := range kinds {
		if got, want := errors.Is(err, k), k == kind; got != want {
			t.Errorf("errors.Is(err, %v) = %v, want %v; err: %v", k, got, want, err)
		}
	}
	msg := err.Error()
	if name != "" && !strings.Contains(msg, name) {
		t.Errorf("error does not name the secret %q: %s", name, msg)
	}
	if ref != "" && !strings.Contains(msg, ref) {
		t.Errorf("error does not name the reference %q: %s", ref, msg)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error leaks %q: %s", s, msg)
		}
	}
	if strings.Contains(msg, "SECRET") || strings.Contains(msg, "TOKEN") {
		t.Errorf("error leaks a secret or token: %s", msg)
	}
}

func startFake(t *testing.T, f *fakeVault) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}

func newTestVault(t *testing.T, cfg VaultConfig, clock *fakeClock) *Vault {
	t.Helper()
	v, err := NewVault(cfg)
	if err != nil {
		t.Fatalf("NewVault: %v", err)
	}
	if clock != nil {
		v.now = clock.Now
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func TestVaultGet(t *testing.T) {
	f := newFakeVault(nil)
	f.status["occlum/9/e500"] = 500
	f.status["occlum/9/e429"] = 429
	f.status["occlum/9/e412"] = 412
	f.status["occlum/9/e400"] = 400
	f.status["occlum/9/e401"] = 401
	f.status["occlum/9/e502"] = 502
	srv := startFake(t, f)
	v := newTestVault(t, VaultConfig{Address: srv.URL, Token: "hvs.root-TOKEN"}, nil)

	tests := []struct {
		ref      string
		want     string
		kind     error
		contains string // in the error message
	}{
		// Intel ASPS: KV v1, field "key".
		{ref: "occlum/1/image_key", want: "image-key-v1-SECRET"},
		{ref: "kv1:occlum/1/image_key#key", want: "image-key-v1-SECRET"},
		{ref: "occlum/1/rsa_pubkey#other", want: "other-SECRET"},
		{ref: "occlum/1//rsa_pubkey#other", want: "other-SECRET"},
		// KV v2.
		{ref: "kv2:secret/myapp/db#password", want: "db-pass-v2-SECRET"},
		{ref: "kv2:secret/myapp/db", want: "db-key-v2-SECRET"},
		{ref: "kv2:secret/myapp/db#password@1", want: "db-pass-v1-SECRET"},
		{ref: "kv2:secret/myapp/db@1", want: "db-key-v1-SECRET"},
		{ref: "kv2:secret/myapp/db#password@2", want: "db-pass-v2-SECRET"},
		{ref: "kv2:teams/a//myapp/db#password", want: "team-pass-SECRET"},
		// Values that are not strings come JSON-encoded.
		{ref: "kv2:secret/myapp/db#port", want: "5432"},
		{ref: "kv2:secret/myapp/db#enabled", want: "true"},
		{ref: "kv2:secret/myapp/db#opts", want: `{"dsn":"a<b&c","tls":true,"user":"app"}`},
		// Not found.
		{ref: "occlum/1/nope", kind: ErrNotFound, contains: "/v1/occlum/1/nope"},
		{ref: "occlum/1/image_key#nofield", kind: ErrNotFound, contains: `no field "nofield"`},
		{ref: "kv2:secret/myapp/db#nothing", kind: ErrNotFound, contains: "null"},
		{ref: "kv2:secret/myapp/db#password@3", kind: ErrNotFound, contains: "version=3"},
		{ref: "kv2:secret/myapp/old#password@1", kind: ErrNotFound, contains: "deleted"},
		{ref: "kv2:secret/myapp/old#password", kind: ErrNotFound, contains: "destroyed"},
		{ref: "kv2:secret/nope/x", kind: ErrNotFound, contains: "/v1/secret/data/nope/x"},
		{ref: "kv2:secret/data/myapp/db", kind: ErrNotFound, contains: "without data/"},
		{ref: "kv1:secret/myapp/db#password", kind: ErrNotFound, contains: "KV v2"},
		{ref: "secret/myapp/db", kind: ErrNotFound, contains: "KV v2"},
		{ref: "kv2:occlum/1/image_key", kind: ErrNotFound, contains: "/v1/occlum/data/1/image_key"},
		// Malformed references.
		{ref: "", kind: ErrNotFound, contains: "invalid reference"},
		{ref: "occlum/1/image_key@2", kind: ErrNotFound, contains: "KV v2"},
		{ref: "kv2:secret", kind: ErrNotFound, contains: "mount and a path"},
		{ref: "occlum/../sys/seal", kind: ErrNotFound, contains: `".."`},
		{ref: "kv3:secret/x", kind: ErrNotFound, contains: "kv3:"},
		// Status mapping.
		{ref: "occlum/9/e500", kind: ErrUnavailable, contains: "HTTP 500"},
		{ref: "occlum/9/e502", kind: ErrUnavailable, contains: "HTTP 502"},
		{ref: "occlum/9/e429", kind: ErrUnavailable, contains: "429"},
		{ref: "occlum/9/e412", kind: ErrUnavailable, contains: "412"},
		{ref: "occlum/9/e400", kind: ErrNotFound, contains: "HTTP 400"},
		{ref: "occlum/9/e401", kind: ErrPermissionDenied, contains: "HTTP 401"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			name := "name-of-" + tt.ref
			got, err := v.Get(context.Background(), Request{Name: name, Ref: tt.ref})
			if tt.kind != nil {
				checkStoreErr(t, err, tt.kind, name, tt.ref, f.allSecrets())
				if !strings.Contains(err.Error(), tt.contains) {
					t.Errorf("error %q does not contain %q", err, tt.contains)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestVaultDefaultKV2AndField(t *testing.T) {
	f := newFakeVault(nil)
	srv := startFake(t, f)
	v := newTestVault(t, VaultConfig{Address: srv.URL, Token: "hvs.root-TOKEN", KVVersion: 2, DefaultField: "password"}, nil)
	for ref, want := range map[string]string{
		"secret/myapp/db":             "db-pass-v2-SECRET",
		"secret/myapp/db@1":           "db-pass-v1-SECRET",
		"secret/myapp/db#key":         "db-key-v2-SECRET",
		"kv1:occlum/1/rsa_pubkey#key": "rsa-pub-SECRET",
	} {
		got, err := v.Get(context.Background(), Request{Name: "n", Ref: ref})
		if err != nil || string(got) != want {
			t.Errorf("Get(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
}

func TestVaultTokens(t *testing.T) {
	f := newFakeVault(nil)
	srv := startFake(t, f)
	withServer := newTestVault(t, VaultConfig{Address: srv.URL, Token: "hvs.nobody-TOKEN"}, nil)
	noServer := newTestVault(t, VaultConfig{Address: srv.URL}, nil)
	secrets := f.allSecrets()

	tests := []struct {
		name  string
		v     *Vault
		token string
		ref   string
		want  string
		kind  error
	}{
		{"request token overrides server token", withServer, "hvs.app1-TOKEN", "occlum/1/image_key", "image-key-v1-SECRET", nil},
		{"request token alone", noServer, "hvs.app2-TOKEN", "occlum/2/master_key", "app2-master-SECRET", nil},
		{"server token lacks the policy", withServer, "", "occlum/1/image_key", "", ErrPermissionDenied},
		{"other app's token", noServer, "hvs.app2-TOKEN", "occlum/1/image_key", "", ErrPermissionDenied},
		{"unknown token", noServer, "hvs.unknown-TOKEN", "occlum/1/image_key", "", ErrPermissionDenied},
		{"no token at all", noServer, "", "occlum/1/image_key", "", ErrPermissionDenied},
		{"malformed token", noServer, "hvs.bad\nTOKEN", "occlum/1/image_key", "", ErrPermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.v.Get(context.Background(), Request{Name: "master_key", Ref: tt.ref, Token: tt.token})
			if tt.kind != nil {
				checkStoreErr(t, err, tt.kind, "master_key", tt.ref, append(secrets, tt.token))
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("Get = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestVaultConcurrentTokens mixes requests with different tokens on one
// store; run with -race.
func TestVaultConcurrentTokens(t *testing.T) {
	f := newFakeVault(nil)
	srv := startFake(t, f)
	v := newTestVault(t, VaultConfig{Address: srv.URL, Token: "hvs.nobody-TOKEN"}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for i := range 100 {
		wg.Add(3)
		go func() {
			defer wg.Done()
			got, err := v.Get(context.Background(), Request{Name: "a", Ref: "occlum/1/image_key", Token: "hvs.app1-TOKEN"})
			if err != nil || string(got) != "image-key-v1-SECRET" {
				errs <- fmt.Errorf("app1 %d: %q %v", i, got, err)
			}
		}()
		go func() {
			defer wg.Done()
			got, err := v.Get(context.Background(), Request{Name: "b", Ref: "occlum/2/master_key", Token: "hvs.app2-TOKEN"})
			if err != nil || string(got) != "app2-master-SECRET" {
				errs <- fmt.Errorf("app2 %d: %q %v", i, got, err)
			}
		}()
		go func() {
			defer wg.Done()
			_, err := v.Get(context.Background(), Request{Name: "c", Ref: "occlum/1/image_key"})
			if !errors.Is(err, ErrPermissionDenied) {
				errs <- fmt.Errorf("server token %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestVaultSealed(t *testing.T) {
	f := newFakeVault(nil)
	srv := startFake(t, f)
	v := newTestVault(t, VaultConfig{Address: srv.URL, Token: "hvs.root-TOKEN"}, nil)
	if err := v.Check(context.Background()); err != nil {
		t.Fatalf("Check before sealing: %v", err)
	}
	f.mu.Lock()
	f.sealed = true
	f.mu.Unlock()
	_, err := v.Get(context.Background(), Request{Name: "master_key", Ref: "occlum/1/image_key"})
	checkStoreErr(t, err, ErrUnavailable, "master_key", "occlum/1/image_key", f.allSecrets())
	if !strings.Contains(err.Error(), "503") {
		t.Errorf("error does not give the status: %v", err)
	}
	err = v.Check(context.Background())
	checkStoreErr(t, err, ErrUnavailable, "", "", f.allSecrets())
	if !strings.Contains(err.Error(), "sealed") {
		t.Errorf("Check error does not say sealed: %v", err)
	}
}

func TestVaultTimeout(t *testing.T) {
	f := newFakeVault(nil)
	f.hang = true
	srv := startFake(t, f)
	v := newTestVault(t, VaultConfig{Address: srv.URL, Token: "hvs.root-TOKEN", Timeout: 200 * time.Millisecond}, nil)

	start := time.Now()
	_, err := v.Get(context.Background(), Request{Name: "master_key", Ref: "occlum/1/image_key"})
	checkStoreErr(t, err, ErrUnavailable, "master_key", "occlum/1/image_key", f.allSecrets())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error does not wrap context.DeadlineExceeded: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Get took %v with a 200ms timeout", d)
	}
	checkStoreErr(t, v.Check(context.Background()), ErrUnavailable, "", "", nil)

	// The caller's context wins when it is shorter or cancelled.
	long := newTestVault(t, VaultConfig{Address: srv.URL, Token: "hvs.root-TOKEN", Timeout: time.Minute}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err = long.Get(ctx, Request{Name: "master_key", Ref: "occlum/1/image_key"})
	checkStoreErr(t, err, ErrUnavailable, "master_key", "occlum/1/image_key", nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error does not wrap context.Canceled: %v", err)
	}
}

func TestVaultUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + ln.Addr().String()
	ln.Close()
	v := newTestVault(t, VaultConfig{Address: addr, Token: "hvs.root-TOKEN", Timeout: 2 * time.Second}, nil)
	_, err = v.Get(context.Background(), Request{Name: "master_key", Ref: "occlum/1/image_key"})
	checkStoreErr(t, err, ErrUnavailable, "master_key", "occlum/1/image_key", []string{"hvs.root-TOKEN"})
	checkStoreErr(t, v.Check(context.Background()), ErrUnavailable, "", "", nil)
}

func TestVaultNamespace(t *testing.T) {
	f := newFakeVault(nil)
	f.namespace = "team-a"
	srv := startFake(t, f)
	v := newTestVault(t, VaultConfig{Address: srv.URL, Token: "hvs.root-TOKEN", Namespace: "team-a"}, nil)
	got, err := v.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key", Token: "hvs.app1-TOKEN"})
	if err != nil || string(got) != "image-key-v1-SECRET" {
		t.Fatalf("Get in namespace = %q, %v", got, err)
	}
	if err := v.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	f.mu.Lock()
	if ns := f.seenNamespaces["occlum/1/image_key"]; len(ns) != 1 || ns[0] != "team-a" {
		t.Errorf("namespace headers on the read: %q", ns)
	}
	if ns := f.seenNamespaces["sys/health"]; len(ns) != 1 || ns[0] != "" {
		t.Errorf("namespace headers on sys/health: %q (want none: it lives in the root namespace)", ns)
	}
	f.mu.Unlock()

	without := newTestVault(t, VaultConfig{Address: srv.URL, Token: "hvs.root-TOKEN"}, nil)
	_, err = without.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key"})
	checkStoreErr(t, err, ErrNotFound, "k", "occlum/1/image_key", f.allSecrets())
}

// TestVaultIgnoresEnvironment: VAULT_TOKEN, VAULT_NAMESPACE and
// VAULT_WRAP_TTL must not change what the store sends.
func TestVaultIgnoresEnvironment(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "hvs.root-TOKEN")
	t.Setenv("VAULT_NAMESPACE", "env-ns")
	t.Setenv("VAULT_WRAP_TTL", "5m")
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
	f := newFakeVault(nil)
	srv := startFake(t, f)
	v := newTestVault(t, VaultConfig{Address: srv.URL}, nil)
	_, err := v.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key"})
	checkStoreErr(t, err, ErrPermissionDenied, "k", "occlum/1/image_key", f.allSecrets())
	got, err := v.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key", Token: "hvs.app1-TOKEN"})
	if err != nil || string(got) != "image-key-v1-SECRET" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ns := f.seenNamespaces["occlum/1/image_key"]; len(ns) != 1 || ns[0] != "" {
		t.Errorf("namespace headers: %q", ns)
	}
}

func TestVaultTLS(t *testing.T) {
	f := newFakeVault(nil)
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	// httptest's certificate is for 127.0.0.1, ::1 and example.com.
	tests := []struct {
		name string
		cfg  VaultConfig
		kind error
	}{
		{"CA file", VaultConfig{CACert: caFile}, nil},
		{"CA file and server name", VaultConfig{CACert: caFile, TLSServerName: "example.com"}, nil},
		{"wrong server name", VaultConfig{CACert: caFile, TLSServerName: "vault.wrong.test"}, ErrUnavailable},
		{"system roots only", VaultConfig{}, ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Address, cfg.Token, cfg.Timeout = srv.URL, "hvs.root-TOKEN", 5*time.Second
			v := newTestVault(t, cfg, nil)
			got, err := v.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key"})
			if tt.kind != nil {
				checkStoreErr(t, err, tt.kind, "k", "occlum/1/image_key", f.allSecrets())
				if !strings.Contains(err.Error(), "certificate") {
					t.Errorf("error does not mention the certificate: %v", err)
				}
				checkStoreErr(t, v.Check(context.Background()), tt.kind, "", "", nil)
				return
			}
			if err != nil || string(got) != "image-key-v1-SECRET" {
				t.Fatalf("Get = %q, %v", got, err)
			}
			if err := v.Check(context.Background()); err != nil {
				t.Fatalf("Check: %v", err)
			}
		})
	}
}

func TestNewVaultConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  VaultConfig
		want string
	}{
		{"no address", VaultConfig{}, "address"},
		{"bad scheme", VaultConfig{Address: "ftp://127.0.0.1"}, "scheme"},
		{"no host", VaultConfig{Address: "https://"}, "host"},
		{"user info", VaultConfig{Address: "https://u:p@vault.example"}, "credentials"},
		{"http to remote", VaultConfig{Address: "http://vault.example:8200"}, "http"},
		{"TLS on http", VaultConfig{Address: "http://127.0.0.1:8200", CACert: notPEM}, "TLS"},
		{"KV 3", VaultConfig{Address: "https://vault.example", KVVersion: 3}, "KVVersion"},
		{"negative timeout", VaultConfig{Address: "https://vault.example", Timeout: -1}, "Timeout"},
		{"negative retries", VaultConfig{Address: "https://vault.example", MaxRetries: -1}, "MaxRetries"},
		{"token and AppRole", VaultConfig{Address: "https://vault.example", Token: "t", AppRole: &AppRole{RoleID: "r"}}, "either"},
		{"AppRole without role", VaultConfig{Address: "https://vault.example", AppRole: &AppRole{SecretID: "s"}}, "RoleID"},
		{"AppRole bad mount", VaultConfig{Address: "https://vault.example", AppRole: &AppRole{RoleID: "r", MountPath: "a/../b"}}, "MountPath"},
		{"token with newline", VaultConfig{Address: "https://vault.example", Token: "hvs.x\nTOKEN"}, "Token"},
		{"missing CA file", VaultConfig{Address: "https://vault.example", CACert: filepath.Join(dir, "nope.pem")}, "CA"},
		{"CA file without PEM", VaultConfig{Address: "https://vault.example", CACert: notPEM}, "no PEM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVault(tt.cfg)
			if err == nil {
				t.Fatal("NewVault succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "TOKEN") || strings.Contains(err.Error(), "u:p") {
				t.Errorf("error leaks a credential: %v", err)
			}
		})
	}
	for _, ok := range []VaultConfig{
		{Address: "http://127.0.0.1:8200"},
		{Address: "http://localhost:8200/"},
		{Address: "http://[::1]:8200"},
		{Address: "http://vault.internal:8200", AllowInsecureHTTP: true},
		{Address: "https://vault.example:8200", AppRole: &AppRole{RoleID: "r", MountPath: "/auth-approle/"}},
	} {
		if _, err := NewVault(ok); err != nil {
			t.Errorf("NewVault(%+v): %v", ok, err)
		}
	}
}

func newAppRoleVault(t *testing.T, f *fakeVault, srv *httptest.Server, secretID string) *Vault {
	return newTestVault(t, VaultConfig{
		Address: srv.URL,
		AppRole: &AppRole{RoleID: "role-ID-1", SecretID: secretID},
	}, f.clock)
}

func TestVaultAppRoleLoginOnceConcurrently(t *testing.T) {
	f := newFakeVault(nil)
	srv := startFake(t, f)
	v := newAppRoleVault(t, f, srv, "secret-ID-SECRET")
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			got, err := v.Get(context.Background(), Request{Name: "k", Ref: "kv2:secret/myapp/db#password"})
			if err != nil || string(got) != "db-pass-v2-SECRET" {
				errs <- fmt.Errorf("Get = %q, %v", got, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.logins != 1 {
		t.Errorf("%d logins, want 1", f.logins)
	}
}

func TestVaultAppRoleReloginAfterRevocation(t *testing.T) {
	f := newFakeVault(nil)
	srv := startFake(t, f)
	v := newAppRoleVault(t, f, srv, "secret-ID-SECRET")
	get := func() error {
		_, err := v.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key"})
		return err
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	// Revoke every AppRole token: the next Get meets a 403, logs in again
	// and succeeds.
	f.mu.Lock()
	for tok := range f.tokens {
		if strings.HasPrefix(tok, "hvs.approle-") {
			delete(f.tokens, tok)
		}
	}
	f.mu.Unlock()
	if err := get(); err != nil {
		t.Fatalf("Get after revocation: %v", err)
	}
	// A policy that refuses the path: the token is young and still valid,
	// so no new login (TestAttack_VaultDeniedPathLogsInOncePerRequest),
	// just ErrPermissionDenied.
	f.mu.Lock()
	f.approlePaths = []string{"occlum/2/master_key"}
	for tok := range f.tokens {
		if strings.HasPrefix(tok, "hvs.approle-") {
			f.tokens[tok].paths = f.approlePaths
		}
	}
	f.mu.Unlock()
	checkStoreErr(t, get(), ErrPermissionDenied, "k", "occlum/1/image_key", f.allSecrets())
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.logins != 2 {
		t.Errorf("%d logins, want 2", f.logins)
	}
}

func TestVaultAppRoleRenewAndExpiry(t *testing.T) {
	f := newFakeVault(nil)
	f.approleTTL = time.Hour
	f.approleMaxTTL = 90 * time.Minute
	srv := startFake(t, f)
	v := newAppRoleVault(t, f, srv, "secret-ID-SECRET")
	get := func() {
		t.Helper()
		if _, err := v.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key"}); err != nil {
			t.Fatal(err)
		}
	}
	counts := func() (int, int) {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.logins, f.renewals
	}
	get()
	if l, r := counts(); l != 1 || r != 0 {
		t.Fatalf("after first Get: %d logins, %d renewals", l, r)
	}
	f.clock.Advance(30 * time.Minute) // still fresh
	get()
	if l, r := counts(); l != 1 || r != 0 {
		t.Fatalf("at 30m: %d logins, %d renewals", l, r)
	}
	f.clock.Advance(15 * time.Minute) // 45m: past 2/3 of the TTL: renew to 90m (max TTL)
	get()
	if l, r := counts(); l != 1 || r != 1 {
		t.Fatalf("at 45m: %d logins, %d renewals", l, r)
	}
	f.clock.Advance(35 * time.Minute) // 80m: renewal capped at 90m gains nothing: log in
	get()
	if l, r := counts(); l != 2 || r != 2 {
		t.Fatalf("at 80m: %d logins, %d renewals", l, r)
	}
	f.clock.Advance(3 * time.Hour) // long expired: renewal fails, log in
	get()
	if l, _ := counts(); l != 3 {
		t.Fatalf("after expiry: %d logins", l)
	}
}

func TestVaultAppRoleLoginFailures(t *testing.T) {
	f := newFakeVault(nil)
	srv := startFake(t, f)
	bad := newAppRoleVault(t, f, srv, "wrong-secret-ID-SECRET")
	_, err := bad.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key"})
	checkStoreErr(t, err, ErrPermissionDenied, "k", "occlum/1/image_key", append(f.allSecrets(), "wrong-secret-ID-SECRET"))
	if !strings.Contains(err.Error(), "AppRole login") {
		t.Errorf("error does not say the login failed: %v", err)
	}
	checkStoreErr(t, bad.Check(context.Background()), ErrPermissionDenied, "", "", []string{"wrong-secret-ID-SECRET"})

	f.mu.Lock()
	f.loginStatus = 500
	f.mu.Unlock()
	good := newAppRoleVault(t, f, srv, "secret-ID-SECRET")
	_, err = good.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key"})
	checkStoreErr(t, err, ErrUnavailable, "k", "occlum/1/image_key", f.allSecrets())

	// Once logged in, a failing login does not stop a still-valid token.
	f.mu.Lock()
	f.loginStatus = 0
	f.mu.Unlock()
	if _, err := good.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key"}); err != nil {
		t.Fatal(err)
	}
	if err := good.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	f.mu.Lock()
	f.loginStatus = 500
	for _, tok := range f.tokens {
		tok.renewable = false
	}
	f.mu.Unlock()
	f.clock.Advance(50 * time.Minute) // past refresh, before expiry
	if _, err := good.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key"}); err != nil {
		t.Fatalf("Get with a valid token while logins fail: %v", err)
	}
}

func TestVaultRetries(t *testing.T) {
	f := newFakeVault(nil)
	f.failures["occlum/1/image_key"] = 1
	f.failures["occlum/2/master_key"] = 1
	srv := startFake(t, f)
	noRetry := newTestVault(t, VaultConfig{Address: srv.URL, Token: "hvs.root-TOKEN"}, nil)
	_, err := noRetry.Get(context.Background(), Request{Name: "k", Ref: "occlum/2/master_key"})
	checkStoreErr(t, err, ErrUnavailable, "k", "occlum/2/master_key", f.allSecrets())

	retry := newTestVault(t, VaultConfig{Address: srv.URL, Token: "hvs.root-TOKEN", MaxRetries: 2}, nil)
	got, err := retry.Get(context.Background(), Request{Name: "k", Ref: "occlum/1/image_key"})
	if err != nil || string(got) != "image-key-v1-SECRET" {
		t.Fatalf("Get with retries = %q, %v", got, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.requests["occlum/1/image_key"]; n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	if n := f.requests["occlum/2/master_key"]; n != 1 {
		t.Errorf("%d requests without retries, want 1", n)
	}
}

func TestErrorType(t *testing.T) {
	e := &Error{Store: "vault", Name: "db", Ref: "kv2:secret/db#pw", Kind: ErrUnavailable, Status: 503,
		Reason: "sealed", Err: context.DeadlineExceeded}
	if !errors.Is(e, ErrUnavailable) || !errors.Is(e, context.DeadlineExceeded) || errors.Is(e, ErrNotFound) {
		t.Error("Unwrap does not give the kind and the cause")
	}
	want := `vault store: secret "db" (ref "kv2:secret/db#pw"): store unavailable: sealed: context deadline exceeded`
	if e.Error() != want {
		t.Errorf("Error() = %q, want %q", e.Error(), want)
	}
	// Names with control characters are quoted, not written raw.
	e = &Error{Store: "file", Name: "a\nb", Ref: "x", Kind: ErrNotFound}
	if strings.Contains(e.Error(), "\n") {
		t.Errorf("raw newline in %q", e.Error())
	}
}
