// Package tlsid is a node's TLS identity: its key and self-signed
// certificate in the state directory, the [NodeID] derived from them, and
// TLS 1.3 configurations that authenticate peers by pinned node IDs
// instead of certificate authorities.
package tlsid

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// File names in the state directory.
const (
	KeyFile  = "node.key" // PKCS #8 private key, PEM, mode 0600
	CertFile = "node.crt" // self-signed X.509 certificate, PEM
)

// commonName is the subject of every node certificate; peers identify
// each other by [NodeID], never by name.
const commonName = "syncd"

// Identity is a node's certificate with its private key and its ID.
type Identity struct {
	Cert tls.Certificate // Leaf is set
	ID   NodeID
}

// LoadOrCreate loads the identity in stateDir, creating it on first use:
// the directory (mode 0700) if missing, an ECDSA P-256 key in [KeyFile]
// (mode 0600) and a self-signed certificate for it in [CertFile]. Files are
// written to a temporary file, synced and linked into place, so a crash
// leaves a whole file or none, and an existing key is never replaced: two
// processes creating the identity at once end up with the same one. A
// missing certificate is re-issued from the existing key (the ID stays).
//
// A key file readable or writable by group or others is refused, as ssh
// does; so are damaged files and a certificate that does not match the
// key. Errors name the file and never contain key material.
func LoadOrCreate(stateDir string) (*Identity, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	keyPath := filepath.Join(stateDir, KeyFile)
	certPath := filepath.Join(stateDir, CertFile)
	if _, err := os.Lstat(keyPath); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Lstat(certPath); err == nil {
			return nil, fmt.Errorf("%s exists but its key %s is missing: restore the key, or remove both to make a new node ID", certPath, keyPath)
		}
		if err := createKey(keyPath); err != nil {
			return nil, err
		}
	}
	key, err := loadKey(keyPath)
	if err != nil {
		return nil, err
	}
	if _, err := os.Lstat(certPath); errors.Is(err, fs.ErrNotExist) {
		if err := createCert(certPath, key); err != nil {
			return nil, err
		}
	}
	cert, err := loadCert(certPath)
	if err != nil {
		return nil, err
	}
	if !samePublicKey(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("%s: the certificate is not for the key in %s", certPath, keyPath)
	}
	return &Identity{
		Cert: tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert},
		ID:   NodeIDOf(cert),
	}, nil
}

// createKey writes a new private key to path unless a file is there.
func createKey(path string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate node key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode node key: %w", err)
	}
	return writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// createCert writes a self-signed certificate for key to path unless a
// file is there. It has no expiry in practice (RFC 5280 §4.1.2.5's
// 99991231235959Z): peers pin the key, and a certificate that lapsed
// would only cut a mesh in two.
func createCert(path string, key crypto.Signer) error {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("certificate serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             time.Now().Add(-time.Hour).UTC().Truncate(time.Second),
		NotAfter:              time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{commonName},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("create certificate: %w", err)
	}
	return writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// loadKey reads the private key at path, refusing one that others may
// read or write.
func loadKey(path string) (crypto.Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s: permissions %04o are too open: a private key must be accessible by its owner only (chmod 600 %s)", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: damaged: not a PEM \"PRIVATE KEY\" block", path)
	}
	// The parser's message is kept out of the error: it is generic and
	// nothing of the key should reach a log.
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: damaged: not a PKCS #8 private key", path)
	}
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("%s: a %T key; want ECDSA or Ed25519", path, k)
}

// loadCert reads the certificate at path.
func loadCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: damaged: not a PEM \"CERTIFICATE\" block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: damaged: %v", path, err)
	}
	return cert, nil
}

// samePublicKey reports whether a and b are the same public key.
func samePublicKey(a, b crypto.PublicKey) bool {
	ak, err1 := x509.MarshalPKIXPublicKey(a)
	bk, err2 := x509.MarshalPKIXPublicKey(b)
	return err1 == nil && err2 == nil && bytes.Equal(ak, bk)
}

// writeNew writes data to path, mode 0600, unless a file is already there
// (then it keeps that file and returns nil). The data goes to a temporary
// file in the same directory, is synced, and is hard-linked to path, which
// fails rather than replaces; the directory is synced after.
func writeNew(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		// A file system without hard links: a rename, which would replace
		// a file created since the caller looked.
		if err := os.Rename(tmp.Name(), path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
