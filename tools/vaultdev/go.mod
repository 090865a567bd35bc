module github.com/asps-project/asps/tools/vaultdev

go 1.26.0

// OpenBao's root module path has no /v2 suffix while its release tags are
// v2.x, so the module proxy lists no version of it: pin the commit of the
// v2.4.0 tag as a pseudo-version, and its sub-modules at the matching v2.4.0.
require (
	github.com/openbao/openbao v0.0.0-20250828202315-f9407a27fbee
	github.com/openbao/openbao/api/v2 v2.4.0
	github.com/openbao/openbao/sdk/v2 v2.4.0
)

// OpenBao v2.4.0's go.mod requires v2.0.0 of these, a version that was never
// published (it uses replace => ./api/auth/... itself).
replace (
	github.com/openbao/openbao/api/auth/approle/v2 v2.0.0 => github.com/openbao/openbao/api/auth/approle/v2 v2.4.0
	github.com/openbao/openbao/api/auth/userpass/v2 v2.0.0 => github.com/openbao/openbao/api/auth/userpass/v2 v2.4.0
)
