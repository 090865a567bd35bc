package main

import (
	"fmt"

	"github.com/asps-project/asps/claims"
	"github.com/asps-project/asps/dcap/sim"
	"github.com/asps-project/asps/devmode"
	flag "github.com/spf13/pflag"
)

// simIdentityFlags are the --sim-* flags of fetch, run, whoami and bench
// provision: in dev mode the simulated enclave or TD presents these
// measurements instead of the demo's, so a user tries their own policy
// without hardware. Each flag given replaces the demo value of that field;
// the others keep it.
type simIdentityFlags struct {
	fs  *flag.FlagSet
	val sim.Identity
	// sets: flag name → copies the flag's value into an identity.
	sets []simField
}

type simField struct {
	name string
	tee  claims.TEE // the TEE whose quote carries the field ("" both)
	copy func(dst, src *sim.Identity)
}

func (s *simIdentityFlags) register(fs *flag.FlagSet) {
	s.fs = fs
	v := &s.val
	hexField := func(name string, tee claims.TEE, dst []byte, usage string, cp func(dst, src *sim.Identity)) {
		fs.Var(&hexValue{dst: dst}, name, fmt.Sprintf("dev mode: the simulated %s's %s (%d bytes `HEX`)", teeNoun(tee), usage, len(dst)))
		s.sets = append(s.sets, simField{name, tee, cp})
	}
	u16Field := func(name string, dst *uint16, usage string, cp func(dst, src *sim.Identity)) {
		fs.Var(uint16Value{dst}, name, "dev mode: the simulated enclave's "+usage+" (`N`)")
		s.sets = append(s.sets, simField{name, claims.SGX, cp})
	}
	// SGX enclave.
	hexField("sim-mr-enclave", claims.SGX, v.MrEnclave[:], "MRENCLAVE", func(d, s *sim.Identity) { d.MrEnclave = s.MrEnclave })
	hexField("sim-mr-signer", claims.SGX, v.MrSigner[:], "MRSIGNER", func(d, s *sim.Identity) { d.MrSigner = s.MrSigner })
	u16Field("sim-isv-prod-id", &v.IsvProdID, "ISVPRODID", func(d, s *sim.Identity) { d.IsvProdID = s.IsvProdID })
	u16Field("sim-isv-svn", &v.IsvSVN, "ISVSVN", func(d, s *sim.Identity) { d.IsvSVN = s.IsvSVN })
	hexField("sim-config-id", claims.SGX, v.ConfigID[:], "CONFIGID", func(d, s *sim.Identity) { d.ConfigID = s.ConfigID })
	u16Field("sim-config-svn", &v.ConfigSVN, "CONFIGSVN", func(d, s *sim.Identity) { d.ConfigSVN = s.ConfigSVN })
	hexField("sim-isv-ext-prod-id", claims.SGX, v.IsvExtProdID[:], "ISVEXTPRODID", func(d, s *sim.Identity) { d.IsvExtProdID = s.IsvExtProdID })
	hexField("sim-isv-family-id", claims.SGX, v.IsvFamilyID[:], "ISVFAMILYID", func(d, s *sim.Identity) { d.IsvFamilyID = s.IsvFamilyID })
	hexField("sim-attributes", claims.SGX, v.Attributes[:], "ATTRIBUTES (default INIT|MODE64, XFRM 3)", func(d, s *sim.Identity) { d.Attributes = s.Attributes })
	// TDX trust domain.
	hexField("sim-mr-td", claims.TDX, v.MrTD[:], "MRTD", func(d, s *sim.Identity) { d.MrTD = s.MrTD })
	for i := range 4 {
		hexField(fmt.Sprintf("sim-rtmr%d", i), claims.TDX, v.Rtmr[i][:], fmt.Sprintf("RTMR%d", i), func(d, s *sim.Identity) { d.Rtmr[i] = s.Rtmr[i] })
	}
	hexField("sim-td-attributes", claims.TDX, v.TdAttributes[:], "TDATTRIBUTES (default 0000001000000000: SEPT_VE_DISABLE)", func(d, s *sim.Identity) { d.TdAttributes = s.TdAttributes })
	hexField("sim-xfam", claims.TDX, v.Xfam[:], "XFAM", func(d, s *sim.Identity) { d.Xfam = s.Xfam })
	hexField("sim-mr-config-id", claims.TDX, v.MrConfigID[:], "MRCONFIGID", func(d, s *sim.Identity) { d.MrConfigID = s.MrConfigID })
	hexField("sim-mr-owner", claims.TDX, v.MrOwner[:], "MROWNER", func(d, s *sim.Identity) { d.MrOwner = s.MrOwner })
	hexField("sim-mr-owner-config", claims.TDX, v.MrOwnerConfig[:], "MROWNERCONFIG", func(d, s *sim.Identity) { d.MrOwnerConfig = s.MrOwnerConfig })
	hexField("sim-mr-servicetd", claims.TDX, v.MrServiceTD[:], "MRSERVICETD (a TD 1.5 quote, version 5, is presented)", func(d, s *sim.Identity) { d.MrServiceTD = s.MrServiceTD })
	fs.BoolVar(&v.Debug, "sim-debug", false, "dev mode: the simulated enclave or TD is a debug build")
	s.sets = append(s.sets, simField{"sim-debug", "", func(d, s *sim.Identity) { d.Debug = s.Debug }})
}

func teeNoun(t claims.TEE) string {
	if t == claims.TDX {
		return "TD"
	}
	return "enclave"
}

// check refuses --sim-* flags outside dev mode and flags of the other TEE.
func (s *simIdentityFlags) check(devMode bool, tee claims.TEE) error {
	if s.fs == nil {
		return nil
	}
	for _, f := range s.sets {
		if !s.fs.Changed(f.name) {
			continue
		}
		if !devMode {
			return usageError("--%s needs dev mode (--dev-dir): only a simulated %s takes its measurements from flags", f.name, teeNoun(f.tee))
		}
		if f.tee != "" && f.tee != tee {
			return usageError("--%s is a field of a simulated %s; add --tee %s", f.name, teeNoun(f.tee), f.tee)
		}
	}
	return nil
}

// identity is the demo identity of tee with the --sim-* flags given laid
// over it.
func (s *simIdentityFlags) identity(tee claims.TEE) sim.Identity {
	id := devmode.DemoIdentity(tee)
	for _, f := range s.sets {
		if s.fs != nil && s.fs.Changed(f.name) {
			f.copy(&id, &s.val)
		}
	}
	return id
}

// attester is the simulated enclave or TD on pki presenting identity().
func (s *simIdentityFlags) attester(pki *sim.PKI, tee claims.TEE) (*sim.Attester, error) {
	o := sim.Options{PKI: pki, TEE: tee, Identity: s.identity(tee)}
	if tee == claims.TDX && s.fs != nil && s.fs.Changed("sim-mr-servicetd") {
		o.QuoteVersion, o.BodyType = 5, 3 // MRSERVICETD is in TD 1.5 bodies only
	}
	return sim.NewAttester(o)
}
