// Package collateral gets the collateral DCAP quotes are verified against
// — TCB info, QE identity, PCK CRL, root CA CRL — from Intel PCS or a
// PCCS, verifies it, caches it in memory and on disk until it expires,
// refreshes it ahead of expiry, reads and writes offline bundles, and
// serves a bundle or cache as a PCCS-compatible mirror.
//
// # Sources
//
// The verifier asks a Source per quote:
//
//	col, info, err := collateral.GetForQuote(ctx, src, q) // ForQuote, then src.Get
//	res, err := verifier.VerifyQuote(q, col, info.VerifyAt)
//
// Cache fetches over the PCS v4 API (Client) and caches; Bundle serves a
// bundle directory offline; Static serves one collateral for everything.
// A Source returns the same *dcap.Collateral pointer for as long as its
// documents are unchanged, so the verifier's caches (keyed by the
// collateral's digest) stay warm.
//
// # Verification
//
// Nothing fetched or loaded is used or cached before it verifies: each
// document is parsed into a dcap.Collateral holding just that document and
// passed to a VerifyFunc (by default Checker.Check): the JSON signature by
// the first certificate of the issuer chain, the chain up to a trust anchor
// pinned by key (Intel's SGX Root CA unless configured), the CRL
// signatures, the validity dates at the time of the fetch, and that the
// document is the one asked for (FMSPC, SGX or TDX, QE or TD_QE, Processor
// or Platform CA). A failure is an *Error whose reason is dcap's:
// dcap.ErrMalformed (garbage), dcap.ErrFMSPCMismatch, dcap.ErrTCBInfoMismatch,
// dcap.ErrQEIdentityMismatch, dcap.ErrTCBInfoSignature,
// dcap.ErrQEIdentitySignature, dcap.ErrCRLInvalid, dcap.ErrCollateralExpired,
// dcap.ErrCRLExpired, dcap.ErrCertExpired, dcap.ErrUntrustedRoot,
// dcap.ErrCertChain. Service failures are ErrUnavailable (unreachable,
// timeout, 5xx, after bounded retries), ErrNotFound (404) and ErrRefused
// (another 4xx).
//
// # The service
//
// A plain-http service URL is refused (ErrPlainHTTP) unless it is on
// loopback (127.0.0.0/8, ::1, localhost: not reachable by the network) or
// ClientOptions.AllowHTTP is set (`--pccs-allow-http`): over plain http
// anyone on the path can serve older, validly signed collateral and read
// the API key. Redirects are followed only within the origin asked
// (scheme, host, port) or to origins in ClientOptions.RedirectOrigins,
// never from https to http; any other is refused with ErrRedirect before
// a request is made to it. The API key is sent to BaseURL's origin only.
//
// # Never back
//
// Each item — the TCB info of a TEE and FMSPC, the QE identity of a TEE,
// the CRL of an issuer — only moves forward. A document with a lower
// tcbEvaluationDataNumber (TCB info, QE identity), a lower CRL number or
// an older issue date (a CRL's thisUpdate) than the copy in force is
// refused with ErrRollback, logged and counted (Stats.Rollbacks): by a
// Cache after a fetch (the copy in force stays; once it has expired the
// request fails closed with ErrExpired caused by ErrRollback), before a
// disk write (a newer file in the cache directory is not overwritten), by
// Bundle.Reopen and by ImportCollateral. Switching a cache from
// --update early to standard can therefore leave it refusing the
// standard documents until they catch up: clear the cache directory when
// doing so.
//
// # Files
//
// Bundle, cache and collateral files are read with ReadFile: regular
// files only (a symlink is followed to one; FIFOs, devices and
// directories are refused with ErrNotRegularFile without blocking), and
// never more than their limit (ErrFileTooLarge), whatever size they claim.
//
// # Caching
//
// A Cache keeps each document until it expires: its next update, or the
// end of its issuer chain's validity if earlier. Once less than a lead
// time or a fraction of its validity window remains it is refreshed in
// the background while the cached copy is still served. A refreshed
// document replaces the cached one only if it verifies and is not older.
// When the service is unreachable the cache serves what has not expired;
// past expiry it fails closed with ErrExpired (which also matches
// dcap.ErrCollateralExpired), unless an operator set a grace period, within
// which the expired document is served and Info.Grace says so.
//
// Fetches are bounded, since anyone can ask for a made-up FMSPC (through
// the mirror, or with a quote whose PCK certificate names one):
// concurrent requests for a document share one fetch; at most
// Options.MaxFetches are in flight; documents the cache never held are
// fetched at most Options.UnknownBurst at once, then one per
// Options.UnknownEvery (beyond: ErrBusy, nothing sent); a fetch a request
// started is canceled when every request waiting for it has given up
// (background refreshes run on), and such a cancellation is not
// remembered as a failure, while real failures are, per document, for
// Options.FailureTTL.
//
// # Bundle directory layout
//
// A bundle directory and a cache directory have the same layout, so a
// cache directory is a bundle, `asps collateral fetch` fills one and
// `asps collateral serve` serves one:
//
//	DIR/tcb/sgx/<FMSPC>.json   TCB info of an SGX FMSPC (12 upper-case hex digits)
//	DIR/tcb/tdx/<FMSPC>.json   TCB info of a TDX FMSPC
//	DIR/qe/sgx.json            QE identity (id "QE")
//	DIR/qe/tdx.json            TD QE identity (id "TD_QE")
//	DIR/crl/processor.json     PCK CRL of the Intel SGX PCK Processor CA
//	DIR/crl/platform.json      PCK CRL of the Intel SGX PCK Platform CA
//	DIR/crl/root.json          Intel SGX Root CA CRL
//
// Each file is one JSON object:
//
//	{
//	 "format": "asps-collateral/1",
//	 "kind": "tcb_info",                  tcb_info, qe_identity, pck_crl or root_ca_crl
//	 "tee": "sgx", "fmspc": "00A067110000", "ca": "",    the fields its kind uses
//	 "url": "https://…/sgx/certification/v4/tcb?fmspc=00A067110000",
//	 "fetched_at": "…", "issue_date": "…", "next_update": "…",
//	 "issuer_chain": "-----BEGIN CERTIFICATE-----\n…",   PEM, the decoded issuer chain header
//	 "body": "{\"tcbInfo\":{…},\"signature\":\"…\"}",    TCB info, QE identity: the response verbatim
//	 "body_hex": "3082…"                                 CRLs: DER in hex
//	}
//
// The body and issuer chain are authoritative; the other fields are
// informational and checked against the file's place. Files are written
// atomically (a temporary file renamed); other files are ignored.
//
// # Mirror
//
// NewHandler serves a Bundle or a Cache over the PCS v4 paths, so that
// other verifiers can use it as their PCCS. Over a Cache, a client that
// need not identify itself could otherwise spend the operator's API key:
// NewHandlerWithOptions limits the upstream fetches each client (IPv4
// address, IPv6 /64) may start (429 beyond), on top of the Cache's
// limits (503 beyond); what is cached is served without limit. A fetch
// runs on the contexts of the requests waiting for it. NewMirrorServer
// gives the http.Server header, read, write and idle timeouts and a
// 16 KiB header cap.
package collateral
