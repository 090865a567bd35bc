package server

import (
	"errors"
	"fmt"
	"testing"

	"github.com/asps-project/asps/dcap"
	"github.com/asps-project/asps/policy"
	"github.com/asps-project/asps/ratls"
	"github.com/asps-project/asps/store"
)

// TestAttack_ReasonCodesHideTheFailedCheck: the reason mapping preferred
// any dcap reason in the chain over the ratls one, so evidence that does
// not parse, or parses as an unsupported kind, was labelled with the dcap
// parser's reason and "unsupported" was lost (issue 11.14). The most
// specific reason wins: a ratls reason, unless it is the generic "quote
// rejected" that wraps the quote verifier's own reason.
func TestAttack_ReasonCodesHideTheFailedCheck(t *testing.T) {
	malformed := &dcap.FormatError{Field: "header.version", Msg: "7"}
	unsupported := &dcap.FormatError{Field: "header.att_key_type", Msg: "3", Unsupported: true}
	type tc struct {
		name string
		err  error
		want string
	}
	cases := []tc{
		{"malformed quote in the evidence", &ratls.Error{Check: "parse quote", Reason: ratls.ErrMalformedEvidence, Cause: malformed}, "ratls: malformed evidence"},
		{"unsupported quote in the evidence", &ratls.Error{Check: "parse quote", Reason: ratls.ErrUnsupportedEvidence, Cause: unsupported}, "ratls: unsupported evidence"},
		{"quote rejected without a dcap reason", &ratls.Error{Check: "verify quote", Reason: ratls.ErrQuoteRejected, Cause: errors.New("collateral: unreachable")}, "ratls: quote rejected"},
		{"quote rejected, unsupported", &ratls.Error{Check: "verify quote", Reason: ratls.ErrQuoteRejected, Cause: unsupported}, "quote: unsupported quote"},
		{"policy", &policy.Denial{Reason: policy.ErrDebugNotAllowed}, "policy: debug workload not allowed"},
		{"store", fmt.Errorf("get: %w", store.ErrUnavailable), "store: " + store.ErrUnavailable.Error()},
		{"unknown", errors.New("something else"), ""},
	}
	// Every ratls reason, with a dcap cause beside it: the ratls reason
	// wins, except the generic ErrQuoteRejected.
	for _, r := range []error{ratls.ErrNoEvidence, ratls.ErrMalformedEvidence, ratls.ErrUnsupportedEvidence, ratls.ErrEvidenceTooLarge,
		ratls.ErrBindingMismatch, ratls.ErrUnknownCriticalExtension, ratls.ErrBadSelfSignature, ratls.ErrUnsupportedKey,
		ratls.ErrCertificateValidity, ratls.ErrDebugEnclave, ratls.ErrClaimsRejected, ratls.ErrNoCertificate,
		ratls.ErrPinMismatch, ratls.ErrNoVerifier, ratls.ErrNoClaims} {
		cases = append(cases, tc{"ratls " + r.Error(), &ratls.Error{Check: "c", Reason: r, Cause: malformed}, "ratls: " + r.Error()})
	}
	// Every dcap reason under "quote rejected": the dcap reason.
	for _, r := range []error{dcap.ErrMalformed, dcap.ErrUnsupported, dcap.ErrUntrustedRoot, dcap.ErrCertChain, dcap.ErrCertExpired,
		dcap.ErrPCKRevoked, dcap.ErrIntermediateRevoked, dcap.ErrTCBSigningRevoked, dcap.ErrCRLMissing, dcap.ErrCRLInvalid,
		dcap.ErrCRLExpired, dcap.ErrPCKExtensions, dcap.ErrCollateralMissing, dcap.ErrCollateralExpired, dcap.ErrTCBInfoSignature,
		dcap.ErrQEIdentitySignature, dcap.ErrTCBInfoMismatch, dcap.ErrFMSPCMismatch, dcap.ErrPCEIDMismatch, dcap.ErrQEIdentityMismatch,
		dcap.ErrQEReportSignature, dcap.ErrQEReportData, dcap.ErrQuoteSignature, dcap.ErrQEVendor, dcap.ErrNoMatchingTCBLevel,
		dcap.ErrQENoMatchingTCBLevel, dcap.ErrTDXModuleMismatch, dcap.ErrTDXModuleTCB, dcap.ErrTCBRevoked} {
		cases = append(cases, tc{"dcap " + r.Error(),
			&ratls.Error{Check: "verify quote", Reason: ratls.ErrQuoteRejected, Cause: &dcap.Rejection{Check: "x", Reason: r}}, "quote: " + r.Error()})
	}
	for _, c := range cases {
		if got := reasonCode(c.err); got != c.want {
			t.Errorf("%s: reason code %q, want %q", c.name, got, c.want)
		}
	}
}
