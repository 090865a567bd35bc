// Package policy decides which verified workloads may read which secrets.
//
// Data flows one way: a verifier turns evidence into claims.Claims; Match
// finds the app those claims prove to be; Authorize turns the secret names
// the workload asked for into store references. The policy never sees raw
// evidence and never fetches a secret.
//
// # File format
//
// A policy is a JSON or YAML file (Load tells them by extension, else by
// content). Decoding is strict: unknown fields, repeated keys, field names
// in another case and YAML aliases are errors. Nothing matches by default:
// an app with no measurement is an error, never a wildcard.
//
//	allow_simulated: false          # optional; true admits simulator evidence (dev only)
//	apps:
//	  - id: web                     # required, unique (ignoring case)
//	    tee: sgx                    # required: sgx or tdx
//	    runtime: gramine            # optional: claims.Runtime must equal it
//	    mr_enclave: 88e2b4e857484d7ae982ab5cfd96f2600ac665b3abf9da2c4ea2f805d5b071cf
//	    mr_signer: 19b4d48ff0331cb5e14e6870c8205c12cf55b9308b518e3002574b57fc109b27
//	    isv_prod_id: 1
//	    min_isv_svn: 2
//	    tcb_statuses: [UpToDate, SWHardeningNeeded]
//	    advisory_ids: [INTEL-SA-00615]
//	    secrets:
//	      tls_key: kv/web/tls_key   # name the workload asks for: store reference
//	      db_password: kv/web/db
//	  - id: batch
//	    tee: tdx
//	    mr_td: bac70e641d1b61e5f673f1c72ea1ab1a4e3f7393764d6711875d1ed348ca2c49d727404eb37b25cd993c56a1eda6856b
//	    rtmr1: e4339a8cf732eb80f73fce42e60da65d6b1d4f00a4bf8183b82ae7cb3095a5926e6ac0a0d9d4540dce4132429a684789
//	    rtmr2: 2b6c7e81c3a0d5f4e9b1a2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607
//	    store_token: hvs.CAESIexample  # optional: the store reads this app's secrets with it
//	    secrets:
//	      image_key: occlum/1/image_key
//
// Top level:
//
//   - apps (required, non-empty): the apps, matched in file order.
//   - min_tcb_evaluation_data_number (default none): refuse claims whose
//     TCB status was judged with collateral of a lower
//     tcbEvaluationDataNumber (claims.Claims.TCBEvalDataNumber, the lower of
//     the TCB info's and the QE identity's): older collateral judges the
//     platform by the standards before a TCB recovery. A floor for every
//     app; an app's own value can raise it, never lower it.
//   - allow_simulated (default false): claims with Simulated set are refused
//     unless it is true. A production server must refuse a policy that sets
//     it (Policy.AllowSimulated; NewHolder's check applies it on every reload).
//
// Per app, selectors that must all hold:
//
//   - id (required): 1-256 printable characters, no blanks; a number is read
//     as its digits.
//   - tee (required): "sgx" or "tdx". Selectors of the other TEE are errors.
//   - runtime: claims.Runtime must equal it ("gramine", "occlum", ...).
//   - SGX: mr_enclave and/or mr_signer (32 bytes hex; at least one); if
//     mr_signer stands alone, isv_prod_id is required. isv_prod_id (equal),
//     min_isv_svn (isv_svn >= it), config_id (64 bytes hex, equal),
//     min_config_svn (config_svn >= it).
//     config_id and min_config_svn only narrow a match: the enclave's
//     loader chooses CONFIGID and CONFIGSVN when it launches the enclave
//     (KSS), so they never pin code; mr_enclave, or mr_signer with
//     isv_prod_id, does.
//   - TDX: mr_td, rtmr1 and rtmr2 (48 bytes hex, all three required):
//     together they pin the TD's code — mr_td the firmware, rtmr1 the OS
//     loader and kernel, rtmr2 the kernel command line and initrd. rtmr0
//     (the firmware's configuration: TD HOB, ACPI tables, configuration
//     firmware volume — what the VMM gives every TD of an instance type),
//     rtmr3, mr_config_id, mr_owner and mr_owner_config only narrow a
//     match: the host chooses the mr_ values and the guest extends rtmr3
//     at run time, so a TD with the same firmware and an attacker's kernel
//     can show any value of them. An app without rtmr1 or rtmr2 is refused
//     at load, and `asps policy check` says what is missing and why. All
//     48 bytes hex, equal when set, never all zeros (all zeros is what
//     every TD shows when nothing was set or measured, so it selects
//     nothing).
//   - TDX attributes (checked once the identity matched, like debug):
//     a TD without TDATTRIBUTES.SEPT_VE_DISABLE (bit 28) is refused — its
//     host can pull private pages from under it and it must handle the
//     resulting #VE itself — unless the app sets allow_sept_ve: true. A TD
//     bound to a service TD (non-zero MR_SERVICETD, TD 1.5: a migration TD,
//     for instance, can read its state) is refused unless the app names
//     that service TD in mr_servicetd (48 bytes hex), which MR_SERVICETD
//     must then equal. MIGRATABLE (bit 29) is admitted only for a TD bound
//     to the migration TD the app names in mr_servicetd. DEBUG (bit 0) is
//     allow_debug's; the other TD-under-debug bits (1-7) and reserved
//     security bits (8-26) are always refused, since their effect on the
//     TD's isolation is unknown. LASS (27), PKS (30), KL (31) and the
//     OTHER bits (32-63, PERFMON among them, which by definition do not
//     affect the TD's security) are CPU features that give the host no
//     access to the TD and are admitted.
//   - SGX attributes: DEBUG (bit 1) is the only one that lets the host read
//     the enclave's memory (allow_debug). PROVISION_KEY, EINITTOKEN_KEY and
//     KSS give the enclave itself access to keys or identity fields; they
//     expose nothing to the host, and mr_enclave/mr_signer already pin
//     the code that could use them, so they are not refused.
//   - tcb_statuses: the TCB statuses accepted (names of
//     claims.KnownStatuses, any case); default [UpToDate]. Revoked is never
//     accepted.
//   - advisory_ids: the advisories tolerated; a workload whose claims carry
//     any other advisory ID is refused. Default none. "*" tolerates any
//     advisory — dangerous: it admits platforms with known, unpatched
//     vulnerabilities, and Describe warns about it.
//   - min_tcb_evaluation_data_number: as the top-level field, for this app
//     (ErrTCBEvaluationTooOld, naming seen vs required).
//   - allow_debug (default false): admit debug enclaves and TDs, whose host
//     can read their memory. Dangerous; Describe warns about it.
//   - binding (default any): the weakest way the evidence may bind the
//     workload's TLS key. "tcg-labelled": only an asps RA-TLS certificate
//     (TCG DICE format whose claims buffer carries asps-domain
//     "asps-ratls-v1", with report_data exactly SHA-256(buffer) followed by
//     32 zero bytes) — raw-quote formats (Gramine, Occlum, SGX SDK), TCG
//     buffers without the label and report data with bytes left over are
//     refused with ErrBindingNotAllowed. "tcg-nonce": in addition, each
//     connection must carry session evidence — a quote made after the
//     handshake over the connection's TLS exporter (ratls.SessionNonce,
//     label "EXPORTER-asps-attestation"), sent as gRPC metadata
//     "asps-session-evidence-bin" (ratls.SessionCredentials does it) — so
//     no recorded quote can be replayed. See "Quote oracles" below.
//
// and what the app may read:
//
//   - secrets (required, non-empty): secret name → store reference. The
//     reference is opaque here: a Vault path, a file store key, or
//     "inline:..." for values imported inline (see Imported).
//   - store_token: a credential the store uses for this app only (Intel
//     ASPS's app_token). Held as a Token, which never prints.
//
// Measurements are hex of exactly the stated length (either case, optional
// 0x). An empty, non-hex, wrong-length or (for mr_enclave, mr_signer and
// every TDX field) all-zero value is an error: Intel's ASPS treats "" or
// "abc" as matching anything; asps refuses the file.
//
// # Decisions
//
// Policy.Match returns the first app whose selectors all hold, or a
// *Denial: errors.Is tells the reason (ErrNoMatchingApp, ErrDebugNotAllowed,
// ErrTCBStatusNotAllowed, ErrAdvisoryNotAllowed, ErrSimulatedNotAllowed,
// ErrTEEMismatch, ErrBadClaims, ErrTDAttributeNotAllowed,
// ErrServiceTDNotAllowed, ErrTCBEvaluationTooOld, ErrBindingNotAllowed)
// and Detail shows seen vs expected, naming
// the closest app. App.Authorize is all or nothing: one name the app may
// not read refuses the request with ErrSecretNotAllowed. Load errors are
// *LoadError values naming app and field.
//
// # Quote oracles: what a workload must never do
//
// An allowed workload must never produce a quote over report data that
// someone else chose: no "quote this for me" endpoint, no "attest this
// public key" service, no debugging hook that passes caller input to the
// quoting API. asps accepts a certificate whose quote's report_data starts
// with a hash of the certificate's key (or of a claims buffer naming it);
// whoever can make an allowed workload quote SHA-256 of their own key gets
// evidence that the server cannot tell from the workload's own, and reads
// the workload's secrets with it — for as long as that quote's platform
// stays trusted, not just once. If the workload must quote for others, put
// the caller's data under the workload's own domain prefix (quote
// SHA-256("myapp-v1" || data), never data itself), and set the app's
// binding in the policy:
//
//   - binding: tcg-labelled refuses every format such an oracle most easily
//     yields (raw quotes over a key hash, TCG buffers without asps's label,
//     report data the caller could partly fill). It does not help against
//     an oracle that quotes 64 raw caller-chosen bytes.
//   - binding: tcg-nonce requires, on every connection, a fresh quote over
//     that connection's TLS exporter. A quote an attacker obtained once is
//     useless on the next connection; an oracle the attacker can still
//     call live remains a hole only the workload can close.
//
// Default (binding: any) keeps every existing certificate working.
//
// # Reloading
//
// A Holder keeps the current policy behind an atomic pointer. One request
// sees one policy: the *App that Match returns belongs to the policy it
// came from, and SecretRef.InlineValue reads values imported inline from
// that app, never from the policy in force later. Reload (for
// SIGHUP) and Watch (polling size, mtime and SHA-256) replace it only with a
// policy that loads and passes the server's check; otherwise the old one
// stays and the error says why.
//
// # Importing
//
// Import, ImportIntelASPS and ImportOcclum convert the policy files of
// Intel's Attestation and Secret Provision Service and of Occlum's gRPC
// RA-TLS server, with a warning for each thing the original accepted that
// cannot be expressed safely; such apps are left out or refused, never
// widened.
package policy
