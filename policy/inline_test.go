package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestInlineValuesBelongToTheirPolicy: values imported inline travel with
// the policy (and app) they were imported with; a later import does not
// change what an earlier snapshot's app releases; a reference without a
// value is refused at load; printing a reference never shows the value.
func TestInlineValuesBelongToTheirPolicy(t *testing.T) {
	imp := func(value string) *Policy {
		t.Helper()
		doc := fmt.Sprintf(`{"kms":"none","app_list":[{"id":"1","mr_enclave":"%s","secrets":{"k":%q}}]}`, hexE1, value)
		got, err := ImportIntelASPS([]byte(doc), nil)
		if err != nil {
			t.Fatal(err)
		}
		return got.Policy
	}
	value := func(p *Policy) string {
		t.Helper()
		refs, err := p.App("1").Authorize([]string{"k"})
		if err != nil {
			t.Fatal(err)
		}
		v, ok := refs[0].InlineValue()
		if !ok {
			t.Fatal("no inline value")
		}
		return string(v)
	}
	old := imp("old value")
	matched := old.App("1") // what a request holds after Match
	_ = imp("new value")
	refs, _ := matched.Authorize([]string{"k"})
	v, _ := refs[0].InlineValue()
	if string(v) != "old value" {
		t.Fatalf("the matched app released %q", v)
	}
	v[0] = 'X' // a caller scribbling on the copy
	if got := value(old); got != "old value" {
		t.Fatalf("the snapshot changed: %q", got)
	}
	for _, format := range []string{"%v", "%+v", "%#v"} {
		if s := fmt.Sprintf(format, refs[0]); strings.Contains(s, "old value") || strings.Contains(s, "6f6c64") {
			t.Errorf("%s of a SecretRef shows the value: %s", format, s)
		}
	}
	if _, err := old.WithInline(map[string][]byte{}); !errors.Is(err, ErrEmptySecretRef) || !strings.Contains(err.Error(), `secret "k"`) {
		t.Fatalf("a missing inline value: %v", err)
	}
	if got, err := old.WithInline(map[string][]byte{refs[0].Ref: []byte("decoded")}); err != nil || value(got) != "decoded" || value(old) != "old value" {
		t.Fatalf("WithInline: %v", err)
	}
}
