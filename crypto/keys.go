// Package crypto holds the repository's use of age: key files, sealing and
// opening objects, random access into encrypted packs, and the keyed chunk
// IDs. It imports nothing of ours.
//
// Three kinds of key exist (docs/FORMAT.md):
//   - data recipients: public age keys that file contents are encrypted to;
//   - the index identity: an X25519 age identity shared by the writing nodes,
//     which opens indexes, trees and snapshots and keys the chunk IDs;
//   - data identities: the operator's private keys for the data recipients,
//     kept off the web nodes and needed only to read file contents.
package crypto

import (
	"bufio"
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
)

// IndexKey is the index identity of a repository. Its methods are safe for
// concurrent use.
type IndexKey struct {
	id   *age.X25519Identity
	path string
}

// GenerateIdentityFile creates a new X25519 identity in the age-keygen file
// format at path (mode 0600, never overwriting an existing file) and
// returns it. Missing directories of path are made with mode 0700; the
// mode of existing ones is left as it is.
func GenerateIdentityFile(path string) (*age.X25519Identity, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create key file %s: %w", path, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# created: %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "# public key: %s\n", id.Recipient())
	fmt.Fprintf(&b, "%s\n", id)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create key file: %w", err)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write key file %s: %w", path, err)
	}
	return id, nil
}

// readKeyFile reads a key file, refusing one that others can read.
func readKeyFile(path, what string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s %s does not exist", what, path)
		}
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("%s %s is a directory, not a key file", what, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s %s is accessible by others (mode %04o); run: chmod 600 %s", what, path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return data, nil
}

// LoadIndexKey reads the index identity from the key file at path. The file
// must hold exactly one X25519 identity and must not be readable by group or
// others.
func LoadIndexKey(path string) (*IndexKey, error) {
	data, err := readKeyFile(path, "index key")
	if err != nil {
		return nil, err
	}
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("index key %s: not an age identity file", path)
	}
	if len(ids) != 1 {
		return nil, fmt.Errorf("index key %s: holds %d identities, want exactly one", path, len(ids))
	}
	x, ok := ids[0].(*age.X25519Identity)
	if !ok {
		return nil, fmt.Errorf("index key %s: not an X25519 identity (AGE-SECRET-KEY-1…)", path)
	}
	return &IndexKey{id: x, path: path}, nil
}

// NewIndexKey wraps an identity already in memory (tests, keygen).
func NewIndexKey(id *age.X25519Identity) *IndexKey { return &IndexKey{id: id} }

// Path is the file the key was loaded from, if any.
func (k *IndexKey) Path() string { return k.path }

// Identity returns the age identity, to open index objects.
func (k *IndexKey) Identity() age.Identity { return k.id }

// Recipient returns the public key that index objects are encrypted to.
func (k *IndexKey) Recipient() *age.X25519Recipient { return k.id.Recipient() }

// derive returns a 32-byte secret for purpose, bound to the repository ID.
func (k *IndexKey) derive(repoID, purpose string) []byte {
	key, err := hkdf.Key(sha256.New, []byte(k.id.String()), []byte(repoID), "syncd "+purpose+" v1", 32)
	if err != nil {
		panic("hkdf: " + err.Error()) // only fails for absurd lengths
	}
	return key
}

// ChunkIDKey returns the HMAC key of the chunk IDs of repository repoID.
func (k *IndexKey) ChunkIDKey(repoID string) []byte { return k.derive(repoID, "chunk id") }

// ConfigMACKey returns the key that authenticates the config of repoID.
func (k *IndexKey) ConfigMACKey(repoID string) []byte { return k.derive(repoID, "config mac") }

// Fingerprint is a short public name for a recipient, safe to print and
// store: the first 16 hex digits of the SHA-256 of its string form.
func Fingerprint(recipient string) string {
	sum := sha256.Sum256([]byte(recipient))
	return hex.EncodeToString(sum[:8])
}

// ParseRecipient parses one public age key (age1…, including post-quantum
// hybrid keys).
func ParseRecipient(s string) (age.Recipient, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty recipient")
	}
	rs, err := age.ParseRecipients(strings.NewReader(s))
	if err != nil || len(rs) != 1 {
		return nil, fmt.Errorf("data recipient %q is not an age public key (age1…)", abbreviate(s))
	}
	return rs[0], nil
}

// LoadIdentities reads the data identities from the key file at path.
func LoadIdentities(path string) ([]age.Identity, error) {
	data, err := readKeyFile(path, "identity")
	if err != nil {
		return nil, err
	}
	ids, err := age.ParseIdentities(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		return nil, fmt.Errorf("identity %s: not an age identity file", path)
	}
	return ids, nil
}

// abbreviate keeps user input in error messages short, never whole.
func abbreviate(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}
