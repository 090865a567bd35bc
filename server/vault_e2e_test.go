package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	aspsv1 "github.com/asps-project/asps/api/asps/v1"
	"github.com/asps-project/asps/devmode"
	"github.com/asps-project/asps/internal/testdata"
	"github.com/asps-project/asps/internal/vaulttest"
	"github.com/asps-project/asps/policy"
	"github.com/asps-project/asps/store"
)

// vaultDo makes one Vault API call and fails the test unless it succeeds.
func vaultDo(t *testing.T, v *vaulttest.Server, method, path string, body any) map[string]any {
	t.Helper()
	code, b, err := v.Do(method, path, body)
	if err != nil || code/100 != 2 {
		t.Fatalf("%s %s: %d %v %s", method, path, code, err, b)
	}
	var m map[string]any
	if len(b) > 0 {
		json.Unmarshal(b, &m)
	}
	return m
}

// TestIntelASPSVaultFlow is Intel ASPS's demo flow against a real OpenBao
// server: occlum/1 as KV v1, image_key under field "key", a Vault policy that
// reads only app 1's paths, a token for it in policy_vault.json — and the
// secret fetched through asps by a simulated enclave.
func TestIntelASPSVaultFlow(t *testing.T) {
	v := vaulttest.Start(t)
	imageKey := "a3f1c9-image-key-for-app-1"
	vaultDo(t, v, "POST", "sys/mounts/occlum/1", map[string]any{"type": "kv", "options": map[string]any{"version": "1"}})
	vaultDo(t, v, "PUT", "occlum/1/image_key", map[string]any{"key": imageKey})
	vaultDo(t, v, "PUT", "occlum/1/rsa_prikey", map[string]any{"key": "private, not for app 1"})
	hcl := testdata.Read(t, "compat", "intel-asps-app1_policy.hcl")
	vaultDo(t, v, "PUT", "sys/policies/acl/app1_policy", map[string]any{"policy": string(hcl)})
	tok := vaultDo(t, v, "POST", "auth/token/create", map[string]any{"policies": []string{"app1_policy"}, "ttl": "1h"})
	appToken := tok["auth"].(map[string]any)["client_token"].(string)

	// policy_vault.json as Intel's ASPS writes it, with the demo enclave's
	// measurement instead of the placeholder.
	pv := fmt.Sprintf(`{"kms":"vault","addr":%q,"auth_method":"token","root_key":"unused",
	  "app_list":[{"id":"1","mr_enclave":"%x","app_token":%q,
	    "secrets":{"image_key":"occlum/1/image_key","rsa_prikey":"occlum/1/rsa_prikey"}}]}`,
		v.Addr, devmode.DemoMrEnclave, appToken)
	imp, err := policy.Import([]byte(pv))
	if err != nil {
		t.Fatal(err)
	}
	if imp.VaultAddr != v.Addr {
		t.Fatalf("vault addr %q", imp.VaultAddr)
	}
	imp.Policy.AllowSimulated = true // the enclave is simulated in this test
	var pol bytes.Buffer
	if err := imp.Policy.Encode(&pol, "yaml"); err != nil {
		t.Fatal(err)
	}
	vs, err := store.NewVault(store.VaultConfig{Address: imp.VaultAddr, KVVersion: 1, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f := start(t, devmode.Options{Policy: pol.Bytes(), Store: vs})
	c := aspsv1.NewSecretsClient(f.conn(t, f.certFor(t, f.attester(t, demoSGX()))))
	ctx := context.Background()

	resp, err := c.GetSecrets(ctx, &aspsv1.GetSecretsRequest{Names: []string{"image_key"}})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.GetSecrets()[0].GetValue()) != imageKey {
		t.Fatalf("image_key %q", resp.GetSecrets()[0].GetValue())
	}

	// The app's token may not read rsa_prikey: PermissionDenied, nothing
	// released — not even image_key, asked for in the same request.
	resp, err = c.GetSecrets(ctx, &aspsv1.GetSecretsRequest{Names: []string{"image_key", "rsa_prikey"}})
	if status.Code(err) != codes.PermissionDenied || resp != nil {
		t.Fatalf("rsa_prikey: %v %v", resp, err)
	}
	if strings.Contains(err.Error(), appToken) {
		t.Fatal("the app token leaked into an error")
	}
	recs := f.audit.records(t)
	if r := recs[len(recs)-1]; r.Decision != "deny" || len(r.Released) != 0 {
		t.Fatalf("audit %+v", r)
	}

	// Sealed mid-run: Unavailable, nothing partial; recovery when unsealed.
	v.Seal()
	if _, err := c.GetSecrets(ctx, &aspsv1.GetSecretsRequest{Names: []string{"image_key"}}); status.Code(err) != codes.Unavailable {
		t.Fatalf("sealed: %v", err)
	}
	v.Unseal()
	if _, err := c.GetSecrets(ctx, &aspsv1.GetSecretsRequest{Names: []string{"image_key"}}); err != nil {
		t.Fatalf("after unseal: %v", err)
	}
	// Stopped: Unavailable; back after a restart.
	v.Stop()
	if _, err := c.GetSecrets(ctx, &aspsv1.GetSecretsRequest{Names: []string{"image_key"}}); status.Code(err) != codes.Unavailable {
		t.Fatalf("stopped: %v", err)
	}
	v.Restart()
	if v.Addr != imp.VaultAddr {
		t.Skipf("OpenBao came back on another address (%s); recovery not checkable", v.Addr)
	}
	if _, err := c.GetSecrets(ctx, &aspsv1.GetSecretsRequest{Names: []string{"image_key"}}); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

// TestVaultKV2AndAppRole: a KV v2 secret read with an AppRole login whose
// tokens expire quickly; the store logs in again.
func TestVaultKV2AndAppRole(t *testing.T) {
	v := vaulttest.Start(t)
	vaultDo(t, v, "PUT", "secret/data/web/db", map[string]any{"data": map[string]any{"password": "v1"}})
	vaultDo(t, v, "PUT", "secret/data/web/db", map[string]any{"data": map[string]any{"password": "v2"}})
	vaultDo(t, v, "PUT", "sys/policies/acl/web", map[string]any{"policy": `path "secret/data/web/*" { capabilities = ["read"] }`})
	vaultDo(t, v, "POST", "sys/auth/approle", map[string]any{"type": "approle"})
	vaultDo(t, v, "POST", "auth/approle/role/web", map[string]any{"token_policies": []string{"web"}, "token_ttl": "2s", "token_max_ttl": "2s"})
	roleID := vaultDo(t, v, "GET", "auth/approle/role/web/role-id", nil)["data"].(map[string]any)["role_id"].(string)
	secretID := vaultDo(t, v, "POST", "auth/approle/role/web/secret-id", nil)["data"].(map[string]any)["secret_id"].(string)

	pol := fmt.Sprintf(`allow_simulated: true
apps:
  - id: web
    tee: sgx
    mr_enclave: %x
    secrets:
      db-password: kv2:secret/web/db#password
      db-password-v1: kv2:secret/web/db#password@1
      other: kv2:secret/other/x#y
`, devmode.DemoMrEnclave)
	vs, err := store.NewVault(store.VaultConfig{Address: v.Addr, AppRole: &store.AppRole{RoleID: roleID, SecretID: secretID}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f := start(t, devmode.Options{Policy: []byte(pol), Store: vs})
	c := aspsv1.NewSecretsClient(f.conn(t, f.certFor(t, f.attester(t, demoSGX()))))
	ctx := context.Background()
	get := func(names ...string) ([]string, error) {
		resp, err := c.GetSecrets(ctx, &aspsv1.GetSecretsRequest{Names: names})
		var out []string
		for _, s := range resp.GetSecrets() {
			out = append(out, string(s.GetValue()))
		}
		return out, err
	}
	if got, err := get("db-password", "db-password-v1"); err != nil || strings.Join(got, ",") != "v2,v1" {
		t.Fatalf("kv2: %v %v", got, err)
	}
	time.Sleep(3 * time.Second) // the AppRole token has expired
	if got, err := get("db-password"); err != nil || got[0] != "v2" {
		t.Fatalf("after token expiry: %v %v", got, err)
	}
	if _, err := get("other"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("outside the role's policy: %v", err)
	}
}
