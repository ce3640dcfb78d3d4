// Package chunkstore is the repository: content-defined chunking, keyed
// chunk IDs, compressed blobs in encrypted packs, the index, trees and
// snapshots, stored in a backend.Backend. docs/FORMAT.md describes every
// object it writes.
package chunkstore

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// ID names a blob (its keyed hash) or a stored object (the SHA-256 of its
// encrypted bytes).
type ID [32]byte

// String returns the ID in lower-case hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits, for display.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) {
	out := make([]byte, 64)
	hex.Encode(out, id[:])
	return out, nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	p, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = p
	return nil
}

// ParseID parses a 64-digit hex ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("invalid ID %q: want 64 hex digits", short(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid ID %q: not hex", short(s))
	}
	return id, nil
}

// Hash returns the SHA-256 of data as an ID: the name of a stored object.
func Hash(data []byte) ID { return sha256.Sum256(data) }

// RandomID returns a random ID.
func RandomID() ID {
	var id ID
	if _, err := rand.Read(id[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return id
}

func short(s string) string {
	if len(s) > 70 {
		return s[:70] + "…"
	}
	return s
}

// BlobType tells what a blob holds.
type BlobType uint8

// Blob types.
const (
	DataBlob BlobType = iota + 1 // a chunk of file contents
	TreeBlob                     // a directory listing
)

// String returns "data" or "tree".
func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	}
	return fmt.Sprintf("blobtype(%d)", t)
}

// MarshalText implements encoding.TextMarshaler.
func (t BlobType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *BlobType) UnmarshalText(b []byte) error {
	switch string(b) {
	case "data":
		*t = DataBlob
	case "tree":
		*t = TreeBlob
	default:
		return fmt.Errorf("unknown blob type %q", short(string(b)))
	}
	return nil
}

// BlobHandle identifies a blob by type and ID.
type BlobHandle struct {
	Type BlobType
	ID   ID
}

// object names in the backend
const (
	configName = "config"
	keysPrefix = "keys/"
)

// ObjectName returns the backend name of a pack of type t with ID id:
// "data/<id>" for content packs and "tree/<id>" for metadata packs.
func ObjectName(t BlobType, id ID) string { return t.String() + "/" + id.String() }

// IndexName returns the backend name of an index object.
func IndexName(id ID) string { return "index/" + id.String() }

// SnapshotName returns the backend name of a snapshot object.
func SnapshotName(id ID) string { return "snapshots/" + id.String() }
