package tlsid

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"strings"
)

// NodeID identifies a node: the SHA-256 of its certificate's
// SubjectPublicKeyInfo. It depends on the key only, so a certificate
// re-issued for the same key keeps the node's ID.
type NodeID [32]byte

// idLen is the length of a NodeID in base32 without padding or dashes.
const idLen = 52

// groupLen is the length of each dash-separated group in [NodeID.String].
const groupLen = 7

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NodeIDOf returns the ID of the node holding the private key of cert.
func NodeIDOf(cert *x509.Certificate) NodeID {
	return sha256.Sum256(cert.RawSubjectPublicKeyInfo)
}

// String returns id in base32 (RFC 4648, upper case, no padding) in groups
// of seven characters separated by dashes: 59 characters in all, the last
// group three long. [ParseNodeID] reads it back.
func (id NodeID) String() string {
	s := idEncoding.EncodeToString(id[:])
	var b strings.Builder
	b.Grow(len(s) + len(s)/groupLen)
	for i := 0; i < len(s); i += groupLen {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(s[i:min(i+groupLen, len(s))])
	}
	return b.String()
}

// Short returns the first seven characters of [NodeID.String], the node's
// mark in conflict file names.
func (id NodeID) Short() string {
	return idEncoding.EncodeToString(id[:5])[:groupLen]
}

// Uint64 returns the first eight bytes of id, big-endian: the node's key in
// version vectors.
func (id NodeID) Uint64() uint64 {
	return binary.BigEndian.Uint64(id[:8])
}

// ParseNodeID parses a node ID as [NodeID.String] prints it. Dashes are
// ignored wherever they are and lower case is accepted, so the ID may also
// be given as 52 characters in one piece. Each string names at most one ID:
// a string whose last character carries bits beyond the 256 of the ID is
// rejected.
func ParseNodeID(s string) (NodeID, error) {
	var id NodeID
	for _, r := range s {
		if r != '-' && !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '2' <= r && r <= '7') {
			return id, fmt.Errorf("node ID %s: character %q is not base32 (A-Z, 2-7) or a dash", quote(s), r)
		}
	}
	t := strings.ToUpper(strings.ReplaceAll(s, "-", ""))
	if len(t) != idLen {
		return id, fmt.Errorf("node ID %s: %d base32 characters, want %d", quote(s), len(t), idLen)
	}
	if n, err := idEncoding.Decode(id[:], []byte(t)); err != nil || n != len(id) {
		return NodeID{}, fmt.Errorf("node ID %s: not base32: %v", quote(s), err)
	}
	if idEncoding.EncodeToString(id[:]) != t {
		return NodeID{}, fmt.Errorf("node ID %s: last character %q cannot end an ID (a typo?)", quote(s), t[len(t)-1])
	}
	return id, nil
}

// quote quotes s for an error message, shortened if long.
func quote(s string) string {
	const limit = 80
	if len(s) > limit {
		return fmt.Sprintf("%q...", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}
