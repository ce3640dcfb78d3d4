package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/binread"
)

// Entry is what the index knows about one path of a folder: its metadata as
// last scanned, the chunks of its content once indexed, and the version of
// the change that wrote it.
type Entry struct {
	Type    string // "file", "dir" or "symlink" (as chunkstore.Node.Type)
	Size    int64  // in bytes
	Mode    uint32 // permission, setuid, setgid and sticky bits (as in chmod)
	ModTime int64  // ns since the Unix epoch
	ChTime  int64  // inode change time, ns since the Unix epoch

	Inode, Device, Links uint64 // as stat(2) reports them
	UID, GID             uint32 // owner

	Target  string          // symlink target, the file system's raw bytes
	Content []chunkstore.ID // chunk IDs of a file, in order; nil until indexed
	Lengths []uint32        // chunk lengths, parallel to Content

	// Version is the folder sequence number of the change that wrote the
	// entry. [Tx.Put] and [Tx.Delete] assign it; a value set by the caller is
	// ignored.
	Version uint64
	// Deleted marks a tombstone: the path is gone, and the entry stays so
	// that peers learn of the delete.
	Deleted bool

	// Vector is the version of the content across nodes. [Tx.Put] of an
	// entry without one (a local change) sets it; [Tx.Put] of an entry with
	// one (a peer's change, applied here) keeps it.
	Vector Vector
}

// EntryOf returns the entry of what an lstat describes: its type, size,
// mode bits and mtime, and the local facts (ctime, inode, device, links,
// owner) that tell whether it changed. Content and Vector are left empty.
func EntryOf(fi fs.FileInfo) Entry {
	e := Entry{Size: fi.Size(), Mode: chunkstore.ModeBits(fi.Mode()), ModTime: fi.ModTime().UnixNano()}
	switch {
	case fi.IsDir():
		e.Type, e.Size = "dir", 0
	case fi.Mode()&fs.ModeSymlink != 0:
		e.Type, e.Size = "symlink", 0
	default:
		e.Type = "file"
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.ChTime = st.Ctim.Sec*1e9 + st.Ctim.Nsec
		e.Inode, e.Device, e.Links = st.Ino, uint64(st.Dev), uint64(st.Nlink)
		e.UID, e.GID = st.Uid, st.Gid
		if fi.IsDir() {
			e.Links = 0 // a directory's link count is its subdirectory count: noise
		}
	}
	return e
}

// entryFormat is the first byte of every encoded entry: 2 since entries
// carry a version vector; format 1 entries (no vector) are still read.
const (
	entryFormat   = 2
	entryFormatV1 = 1
)

// type codes in the encoding
var typeCodes = map[string]byte{"file": 1, "dir": 2, "symlink": 3}

var typeNames = [...]string{1: "file", 2: "dir", 3: "symlink"}

const flagDeleted = 1

// check reports whether e can be stored.
func (e *Entry) check() error {
	if _, ok := typeCodes[e.Type]; !ok {
		return fmt.Errorf("unknown entry type %q", e.Type)
	}
	if len(e.Lengths) != len(e.Content) {
		return fmt.Errorf("%d chunk lengths for %d chunks", len(e.Lengths), len(e.Content))
	}
	if !e.Vector.Valid() {
		return fmt.Errorf("invalid version vector %v", e.Vector)
	}
	return nil
}

// appendEntry appends the encoding of e, which must pass check, to dst:
//
//	format byte (2), flags byte (1 = deleted), type byte (1 file, 2 dir, 3 symlink),
//	uvarint Version, varint Size, uvarint Mode, varint ModTime, varint ChTime,
//	uvarint Inode, Device, Links, UID, GID,
//	uvarint len(Target), Target bytes,
//	uvarint n, n chunk IDs of 32 bytes, n uvarint lengths,
//	uvarint m, m pairs of uvarint node, value: the vector.
//
// Format 1 entries, written before vectors existed, end after the lengths
// and decode with an empty vector.
func appendEntry(dst []byte, e *Entry) []byte {
	var flags byte
	if e.Deleted {
		flags |= flagDeleted
	}
	dst = append(dst, entryFormat, flags, typeCodes[e.Type])
	dst = binary.AppendUvarint(dst, e.Version)
	dst = binary.AppendVarint(dst, e.Size)
	dst = binary.AppendUvarint(dst, uint64(e.Mode))
	dst = binary.AppendVarint(dst, e.ModTime)
	dst = binary.AppendVarint(dst, e.ChTime)
	for _, v := range []uint64{e.Inode, e.Device, e.Links, uint64(e.UID), uint64(e.GID)} {
		dst = binary.AppendUvarint(dst, v)
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.Target)))
	dst = append(dst, e.Target...)
	dst = AppendChunks(dst, e.Content, e.Lengths)
	return e.Vector.Append(dst)
}

// decodeEntry decodes b, which it does not retain. It returns an error, and
// never panics, on any input that appendEntry cannot have produced.
func decodeEntry(b []byte) (Entry, error) {
	var e Entry
	d := binread.Reader{B: b}
	format := d.Byte()
	if d.Err == nil && format != entryFormat && format != entryFormatV1 {
		return e, fmt.Errorf("unknown entry format %d", format)
	}
	flags := d.Byte()
	if flags&^flagDeleted != 0 {
		d.Fail(fmt.Errorf("unknown flags %#x", flags))
	}
	e.Deleted = flags&flagDeleted != 0
	if t := d.Byte(); d.Err == nil {
		if int(t) >= len(typeNames) || typeNames[t] == "" {
			d.Fail(fmt.Errorf("unknown entry type %d", t))
		} else {
			e.Type = typeNames[t]
		}
	}
	const max32, max64 = 1<<32 - 1, 1<<64 - 1
	e.Version = d.Uvarint(max64)
	e.Size = d.Varint()
	e.Mode = uint32(d.Uvarint(max32))
	e.ModTime = d.Varint()
	e.ChTime = d.Varint()
	e.Inode = d.Uvarint(max64)
	e.Device = d.Uvarint(max64)
	e.Links = d.Uvarint(max64)
	e.UID = uint32(d.Uvarint(max32))
	e.GID = uint32(d.Uvarint(max32))
	e.Target = string(d.Bytes(d.Uvarint(uint64(len(d.B)))))
	e.Content, e.Lengths = ReadChunks(&d, max32)
	if format == entryFormat {
		e.Vector = ReadVector(&d, max64)
		if d.Err == nil && !e.Vector.Valid() {
			d.Fail(errors.New("vector not sorted or with a zero counter"))
		}
	}
	if d.Err == nil && len(d.B) > 0 {
		d.Fail(fmt.Errorf("%d trailing bytes", len(d.B)))
	}
	if d.Err != nil {
		return Entry{}, d.Err
	}
	return e, nil
}

// pathKey returns the key of rel, which must be valid (see the package
// documentation): what is below a directory are the keys with prefix
// pathKey(dir)+0x00, or for the root every key but its own.
func pathKey(rel string) []byte {
	k := make([]byte, 1+len(rel))
	for i := 0; i < len(rel); i++ {
		if c := rel[i]; c != '/' {
			k[1+i] = c
		}
	}
	return k
}

// keyPath is the inverse of pathKey.
func keyPath(k []byte) (string, error) {
	if len(k) == 0 || k[0] != 0 {
		return "", fmt.Errorf("bad key %q", k)
	}
	var p strings.Builder
	p.Grow(len(k) - 1)
	for _, c := range k[1:] {
		if c == 0 {
			c = '/'
		}
		p.WriteByte(c)
	}
	return p.String(), nil
}

// checkPath reports whether rel is a valid path: "" (the folder root) or
// names separated by single slashes, none empty, ".", ".." or holding a
// NUL byte. Names may hold any other byte, invalid UTF-8 included.
func checkPath(rel string) error {
	if rel == "" {
		return nil
	}
	if strings.IndexByte(rel, 0) >= 0 {
		return fmt.Errorf("invalid path %q: NUL byte", rel)
	}
	for name := range strings.SplitSeq(rel, "/") {
		if name == "" || name == "." || name == ".." {
			return fmt.Errorf("invalid path %q: name %q", rel, name)
		}
	}
	return nil
}

// parents returns the directories above rel, innermost first, ending with
// the root "": "a/b/c" has "a/b", "a", "".
func parents(rel string) []string {
	var ps []string
	for rel != "" {
		i := strings.LastIndexByte(rel, '/')
		if i < 0 {
			rel = ""
		} else {
			rel = rel[:i]
		}
		ps = append(ps, rel)
	}
	return ps
}
