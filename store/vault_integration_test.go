package store

import (
	"context"
	"errors"
	"fmt"
	"github.com/asps-project/asps/internal/vaulttest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// TestVaultIntegration runs against a real Vault or OpenBao server when
// ASPS_TEST_VAULT_ADDR and ASPS_TEST_VAULT_TOKEN (a token allowed to mount
// secrets engines and auth methods, write policies and create tokens, e.g.
// a dev server's root token) are set; ASPS_TEST_VAULT_CACERT is optional.
// It creates its own mounts, policy, token and AppRole under a unique
// prefix and removes them afterwards. For example:
//
//	bao server -dev -dev-root-token-id=root -dev-listen-address=127.0.0.1:8200 &
//	ASPS_TEST_VAULT_ADDR=http://127.0.0.1:8200 ASPS_TEST_VAULT_TOKEN=root go test -run Integration ./store/
func TestVaultIntegration(t *testing.T) {
	addr, admin := os.Getenv("ASPS_TEST_VAULT_ADDR"), os.Getenv("ASPS_TEST_VAULT_TOKEN")
	if addr == "" || admin == "" {
		// The project's own OpenBao (tools/vaultdev); skips with a
		// message, or fails under ASPS_REQUIRE_VAULT=1, when unavailable.
		srv := vaulttest.Start(t)
		addr, admin = srv.Addr, srv.RootToken
	}
	caCert := os.Getenv("ASPS_TEST_VAULT_CACERT")
	ctx := context.Background()

	acfg := api.DefaultConfig()
	acfg.Address = addr
	if caCert != "" {
		if err := acfg.ConfigureTLS(&api.TLSConfig{CACert: caCert}); err != nil {
			t.Fatal(err)
		}
	}
	admc, err := api.NewClient(acfg)
	if err != nil {
		t.Fatal(err)
	}
	admc.SetToken(admin)
	admc.ClearNamespace()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(path string, data map[string]any) *api.Secret {
		t.Helper()
		s, err := admc.Logical().WriteWithContext(ctx, path, data)
		must(err)
		return s
	}

	prefix := fmt.Sprintf("asps-it-%d", time.Now().UnixNano())
	kv1 := prefix + "/1"        // like Intel's occlum/1 (KV v1)
	kv2 := prefix + "-kv2"      // KV v2, one segment
	kv2deep := prefix + "/team" // KV v2, two segments
	arMount := prefix + "-approle"
	policy := prefix + "-app1"

	must(admc.Sys().MountWithContext(ctx, kv1, &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}))
	t.Cleanup(func() { _ = admc.Sys().Unmount(kv1) })
	must(admc.Sys().MountWithContext(ctx, kv2, &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}))
	t.Cleanup(func() { _ = admc.Sys().Unmount(kv2) })
	must(admc.Sys().MountWithContext(ctx, kv2deep, &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}))
	t.Cleanup(func() { _ = admc.Sys().Unmount(kv2deep) })

	write(kv1+"/image_key", map[string]any{"key": "image-key-VALUE", "num": 7})
	write(kv1+"/rsa_pubkey", map[string]any{"key": "rsa-pub-VALUE"})
	// KV v2 writes may fail for a moment while the mount upgrades.
	var kv2err error
	for range 50 {
		if _, kv2err = admc.Logical().WriteWithContext(ctx, kv2+"/data/app/db", map[string]any{"data": map[string]any{"password": "pw-1-VALUE"}}); kv2err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	must(kv2err)
	write(kv2+"/data/app/db", map[string]any{"data": map[string]any{"password": "pw-2-VALUE", "key": "key-2-VALUE", "opts": map[string]any{"a": 1}}})
	write(kv2+"/data/app/db", map[string]any{"data": map[string]any{"password": "pw-3-VALUE"}})
	write(kv2+"/delete/app/db", map[string]any{"versions": []int{1}})
	write(kv2+"/destroy/app/db", map[string]any{"versions": []int{2}})
	write(kv2+"/data/app/db", map[string]any{"data": map[string]any{"password": "pw-4-VALUE", "key": "key-4-VALUE"}})
	for range 50 {
		if _, kv2err = admc.Logical().WriteWithContext(ctx, kv2deep+"/data/app/db", map[string]any{"data": map[string]any{"password": "team-VALUE"}}); kv2err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	must(kv2err)

	must(admc.Sys().PutPolicyWithContext(ctx, policy, fmt.Sprintf(`
path "%s/image_key" { capabilities = ["read"] }
path "%s/data/app/db" { capabilities = ["read"] }
`, kv1, kv2)))
	t.Cleanup(func() { _ = admc.Sys().DeletePolicy(policy) })
	tokSecret, err := admc.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{Policies: []string{policy}, TTL: "10m"})
	must(err)
	appToken := tokSecret.Auth.ClientToken
	t.Cleanup(func() { _ = admc.Auth().Token().RevokeTree(appToken) })

	must(admc.Sys().EnableAuthWithOptionsWithContext(ctx, arMount, &api.EnableAuthOptions{Type: "approle"}))
	t.Cleanup(func() { _ = admc.Sys().DisableAuth(arMount) })
	write("auth/"+arMount+"/role/asps", map[string]any{"token_policies": policy, "token_ttl": "2m", "token_max_ttl": "10m"})
	rid, err := admc.Logical().ReadWithContext(ctx, "auth/"+arMount+"/role/asps/role-id")
	must(err)
	roleID, _ := rid.Data["role_id"].(string)
	sid := write("auth/"+arMount+"/role/asps/secret-id", nil)
	secretID, _ := sid.Data["secret_id"].(string)
	if roleID == "" || secretID == "" {
		t.Fatal("no role_id or secret_id")
	}

	secrets := []string{admin, appToken, secretID, "VALUE"}
	base := VaultConfig{Address: addr, CACert: caCert, Timeout: 10 * time.Second}
	withCfg := func(mod func(*VaultConfig)) *Vault {
		cfg := base
		mod(&cfg)
		return newTestVault(t, cfg, nil)
	}
	perRequest := withCfg(func(*VaultConfig) {})
	rootStore := withCfg(func(c *VaultConfig) { c.Token = admin })
	approle := withCfg(func(c *VaultConfig) {
		c.AppRole = &AppRole{RoleID: roleID, SecretID: secretID, MountPath: arMount}
	})
	badRole := withCfg(func(c *VaultConfig) {
		c.AppRole = &AppRole{RoleID: roleID, SecretID: "00000000-0000-0000-0000-000000000000", MountPath: arMount}
	})

	tests := []struct {
		name  string
		v     *Vault
		token string
		ref   string
		want  string
		kind  error
	}{
		{"intel plain path, app token", perRequest, appToken, kv1 + "/image_key", "image-key-VALUE", nil},
		{"kv1 explicit field", perRequest, appToken, "kv1:" + kv1 + "/image_key#key", "image-key-VALUE", nil},
		{"kv1 number field", perRequest, appToken, kv1 + "/image_key#num", "7", nil},
		{"kv1 missing field", perRequest, appToken, kv1 + "/image_key#nope", "", ErrNotFound},
		{"kv1 outside the app's policy", perRequest, appToken, kv1 + "/rsa_pubkey", "", ErrPermissionDenied},
		{"no token", perRequest, "", kv1 + "/image_key", "", ErrPermissionDenied},
		{"unknown token", perRequest, "s.notARealTokenAtAll000000", kv1 + "/image_key", "", ErrPermissionDenied},
		{"root: kv1 other secret", rootStore, "", kv1 + "/rsa_pubkey", "rsa-pub-VALUE", nil},
		{"root: kv1 missing", rootStore, "", kv1 + "/nope", "", ErrNotFound},
		{"kv2 latest", perRequest, appToken, "kv2:" + kv2 + "/app/db#password", "pw-4-VALUE", nil},
		{"kv2 default field", perRequest, appToken, "kv2:" + kv2 + "/app/db", "key-4-VALUE", nil},
		{"kv2 version 3", perRequest, appToken, "kv2:" + kv2 + "/app/db#password@3", "pw-3-VALUE", nil},
		{"kv2 deleted version", perRequest, appToken, "kv2:" + kv2 + "/app/db#password@1", "", ErrNotFound},
		{"kv2 destroyed version", perRequest, appToken, "kv2:" + kv2 + "/app/db#password@2", "", ErrNotFound},
		{"kv2 future version", perRequest, appToken, "kv2:" + kv2 + "/app/db#password@99", "", ErrNotFound},
		{"kv2 field missing in version 3", perRequest, appToken, "kv2:" + kv2 + "/app/db#key@3", "", ErrNotFound},
		{"root: kv2 two-segment mount", rootStore, "", "kv2:" + kv2deep + "//app/db#password", "team-VALUE", nil},
		{"root: kv2 missing", rootStore, "", "kv2:" + kv2 + "/app/nope", "", ErrNotFound},
		{"root: kv1 reference on a kv2 mount", rootStore, "", "kv1:" + kv2 + "/app/db", "", ErrNotFound},
		{"root: kv2 reference on a kv1 mount", rootStore, "", "kv2:" + kv1 + "//image_key", "", ErrNotFound},
		{"approle kv1", approle, "", kv1 + "/image_key", "image-key-VALUE", nil},
		{"approle kv2", approle, "", "kv2:" + kv2 + "/app/db#password", "pw-4-VALUE", nil},
		{"approle outside policy", approle, "", kv1 + "/rsa_pubkey", "", ErrPermissionDenied},
		{"approle request token wins", approle, admin, kv1 + "/rsa_pubkey", "rsa-pub-VALUE", nil},
		{"approle bad secret id", badRole, "", kv1 + "/image_key", "", ErrPermissionDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.v.Get(ctx, Request{Name: "it-secret", Ref: tt.ref, Token: tt.token})
			if tt.kind != nil {
				checkStoreErr(t, err, tt.kind, "it-secret", tt.ref, secrets)
				t.Logf("as expected: %v", err)
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("Get = %q, %v; want %q", got, err, tt.want)
			}
		})
	}

	for name, v := range map[string]*Vault{"token-less": perRequest, "root": rootStore, "approle": approle} {
		if err := v.Check(ctx); err != nil {
			t.Errorf("Check(%s): %v", name, err)
		}
	}
	if err := badRole.Check(ctx); !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("Check with a bad secret ID = %v", err)
	}

	// A revoked AppRole token: the store logs in again.
	tok := approle.auth.current()
	must(admc.Auth().Token().RevokeOrphanWithContext(ctx, tok))
	if got, err := approle.Get(ctx, Request{Name: "it", Ref: kv1 + "/image_key"}); err != nil || string(got) != "image-key-VALUE" {
		t.Errorf("Get after revocation = %q, %v", got, err)
	}
	if approle.auth.current() == tok {
		t.Error("no new AppRole token after revocation")
	}
	// Renewal: pretend two thirds of the TTL went by.
	approle.auth.mu.Lock()
	approle.auth.refreshAt = time.Now().Add(-time.Second)
	approle.auth.expires = time.Now().Add(30 * time.Second)
	approle.auth.mu.Unlock()
	tok = approle.auth.current()
	if _, err := approle.Get(ctx, Request{Name: "it", Ref: kv1 + "/image_key"}); err != nil {
		t.Errorf("Get after renewal: %v", err)
	}
	if cur := approle.auth.current(); cur != tok {
		t.Errorf("the token was replaced, not renewed")
	}
	// The revoked per-request token.
	must(admc.Auth().Token().RevokeTreeWithContext(ctx, appToken))
	_, err = perRequest.Get(ctx, Request{Name: "it", Ref: kv1 + "/image_key", Token: appToken})
	checkStoreErr(t, err, ErrPermissionDenied, "it", kv1+"/image_key", secrets)

	t.Run("namespace", func(t *testing.T) {
		ns := prefix + "-ns"
		if _, err := admc.Logical().WriteWithContext(ctx, "sys/namespaces/"+ns, map[string]any{}); err != nil {
			t.Skipf("no namespaces on this server: %v", err)
		}
		t.Cleanup(func() {
			_, _ = admc.Logical().Delete("sys/namespaces/" + ns)
		})
		nsc := admc.WithNamespace(ns)
		must(nsc.Sys().MountWithContext(ctx, "kv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}))
		_, err := nsc.Logical().WriteWithContext(ctx, "kv/x", map[string]any{"key": "ns-VALUE"})
		must(err)
		inNS := withCfg(func(c *VaultConfig) { c.Token = admin; c.Namespace = ns })
		if got, err := inNS.Get(ctx, Request{Name: "n", Ref: "kv/x"}); err != nil || string(got) != "ns-VALUE" {
			t.Errorf("Get in namespace = %q, %v", got, err)
		}
		if err := inNS.Check(ctx); err != nil {
			t.Errorf("Check in namespace: %v", err)
		}
		_, err = rootStore.Get(ctx, Request{Name: "n", Ref: "kv/x"})
		if err == nil || strings.Contains(err.Error(), "VALUE") {
			t.Errorf("Get outside the namespace = %v", err)
		}
		_ = nsc.Sys().Unmount("kv")
	})
}
