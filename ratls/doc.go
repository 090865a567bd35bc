// Package ratls issues and verifies attested X.509 certificates (RA-TLS)
// and builds crypto/tls configurations whose handshakes verify them.
//
// An RA-TLS certificate is a self-signed certificate for a fresh key pair
// whose extension carries TEE evidence — a DCAP quote — that commits to the
// certificate's public key. A TLS 1.3 handshake proves the peer holds the
// private key; the quote proves the key was made inside the attested TEE.
// Together they bind the channel to the attestation.
//
// # Formats
//
// Issued certificates use the TCG DICE tagged evidence extension (OID
// 2.23.133.5.4.9) as the CCC "Interoperable RA-TLS" specification defines
// it. The extension value (the DER OCTET STRING's content) is the CBOR data
// item itself, with no further ASN.1 wrapping:
//
//	60000([ quote: bstr, claims-buffer: bstr ])
//
// claims-buffer is a definite-length CBOR map from text names to byte
// strings; "pubkey-hash" holds the CBOR encoding of the CoSWID hash-entry
// [hash-alg-id, SHA-x(SubjectPublicKeyInfo DER)] (hash-alg-id 1 sha-256,
// 7 sha-384, 8 sha-512), "nonce" optionally holds a nonce. The quote's
// report_data is SHA-256(claims-buffer) ‖ 32 zero bytes. This is byte for
// byte what Gramine, the Intel SGX SDK and RATS-TLS produce.
//
// Verification also reads the legacy formats, whose extension value is the
// raw quote and whose report_data starts with SHA-256(SubjectPublicKeyInfo):
// Gramine (OID 0.6.9.42.840.113741.1337.6 as Gramine actually encodes it,
// and 1.2.840.113741.1337.6 as it was meant), the Intel SGX SDK
// (1.2.840.113741.1.13.1) and Occlum (1.2.840.113741.1). A certificate
// carrying several is judged by the first present in that order, TCG first;
// a quote that does not commit to the presented key is rejected whatever
// else is right.
//
// # Use
//
// A workload calls NewCertificate with an attest.Attester and presents the
// result with ClientConfig (or NewClientCredentials for gRPC). The server
// builds a Verifier over a QuoteVerifier (DCAP verification plus
// collateral) and serves with ServerConfig (or NewServerCredentials); a
// handler reads the peer's verified claims with ClaimsFromPeer or
// (*Verifier).PeerClaims. Inspect describes a certificate's evidence
// without verifying the quote.
package ratls
