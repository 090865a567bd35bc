package policy_test

import (
	"errors"
	"fmt"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/policy"
)

func Example() {
	p, err := policy.Parse([]byte(`
apps:
  - id: web
    tee: sgx
    mr_enclave: 88e2b4e857484d7ae982ab5cfd96f2600ac665b3abf9da2c4ea2f805d5b071cf
    secrets:
      tls_key: kv/web/tls_key
`), "yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	mr, _ := claims.ParseHex("88e2b4e857484d7ae982ab5cfd96f2600ac665b3abf9da2c4ea2f805d5b071cf")
	c := &claims.Claims{TEE: claims.SGX, TCBStatus: claims.StatusUpToDate, SGX: &claims.SGXIdentity{MrEnclave: mr}}

	app, err := p.Match(c)
	if err != nil {
		fmt.Println(err)
		return
	}
	refs, err := app.Authorize([]string{"tls_key"})
	fmt.Println(app.ID, refs[0].Ref, err)

	c.Debug = true
	_, err = p.Match(c)
	fmt.Println(errors.Is(err, policy.ErrDebugNotAllowed))
	// Output:
	// web kv/web/tls_key <nil>
	// true
}
