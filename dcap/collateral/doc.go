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
// which the expired document is served and Info.Grace says so. Concurrent
// requests for a document not yet cached share one fetch.
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
// other verifiers can use it as their PCCS.
package collateral
