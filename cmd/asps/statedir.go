package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/asps-project/asps/internal/fileread"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/asps-project/asps/devmode"
)

// serverKeyFile is the generated server key in the state directory.
const serverKeyFile = "server-key.pem"

// defaultStateDir is where the server keeps its generated key: $ASPS_STATE_DIR,
// systemd's $STATE_DIRECTORY, $XDG_STATE_HOME/asps, /var/lib/asps for
// root, else ~/.local/state/asps.
func defaultStateDir() string {
	if d := os.Getenv("ASPS_STATE_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		d, _, _ = strings.Cut(d, ":") // systemd lists several with ':'
		return d
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "asps")
	}
	if os.Geteuid() == 0 {
		return "/var/lib/asps"
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "asps")
	}
	return ""
}

// errStateKey: the key in the state directory cannot be used as is.
var errStateKey = errors.New("server key in the state directory refused")

// stateServerCert returns a self-signed server certificate for the key kept
// in dir, generating the key on first use, so the server's pin survives
// restarts. The key file must be a regular file readable by its owner only;
// anything else is refused rather than used or replaced.
func stateServerCert(dir string) (cert tls.Certificate, pin [32]byte, created bool, err error) {
	if dir == "" {
		return cert, pin, false, usageError("no state directory: give --state-dir DIR (or --tls-cert/--tls-key)")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return cert, pin, false, fmt.Errorf("--state-dir: %w", err)
	}
	path := filepath.Join(dir, serverKeyFile)
	k, err := readStateKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		if k, err = createStateKey(dir, path); err == nil {
			created = true
		}
	}
	if err != nil {
		return cert, pin, false, err
	}
	cert, pin, err = devmode.SelfSignedServerCertFromKey("asps server", k)
	return cert, pin, created, err
}

func readStateKey(path string) (*ecdsa.PrivateKey, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", errStateKey, path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is readable or writable by others (mode %04o); chmod 600 it", errStateKey, path, fi.Mode().Perm())
	}
	b, err := fileread.Read(path, maxPEMFile)
	if err != nil {
		return nil, fmt.Errorf("--state-dir: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: %s holds no PKCS #8 private key", errStateKey, path)
	}
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errStateKey, path, err)
	}
	k, ok := key.(*ecdsa.PrivateKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: %s is not an ECDSA P-256 key", errStateKey, path)
	}
	return k, nil
}

// createStateKey writes a new key to path: to a private temporary file
// first, then linked into place, so two servers starting at once agree on
// one key (the second reads the first's).
func createStateKey(dir, path string) (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, ".server-key-*")
	if err != nil {
		return nil, fmt.Errorf("--state-dir: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err == nil {
		err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("--state-dir: %w", err)
		}
	} else {
		f.Close()
		return nil, fmt.Errorf("--state-dir: %w", err)
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readStateKey(path)
		}
		return nil, fmt.Errorf("--state-dir: %w", err)
	}
	return k, nil
}
