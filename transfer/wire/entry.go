// Package wire is the encoding of the messages of the peer protocol
// (docs/PROTOCOL.md): index entries, block requests and block data. It
// does no I/O beyond the readers and writers it is given. Every decoder
// bounds what it allocates by the input it has seen and checks what it
// decodes, so that a hostile peer gets an error, never a panic, a huge
// allocation or a path outside the folder.
package wire

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/internal/binread"
	"github.com/syncd/syncd/internal/ownname"
	"github.com/syncd/syncd/state"
)

// Limits on what a peer may send.
const (
	MaxPath       = 4096     // bytes of a path
	MaxName       = 255      // bytes of one name in a path
	MaxTarget     = 4096     // bytes of a symlink target
	MaxChunk      = 64 << 20 // bytes of one chunk
	MaxVector     = 1024     // counters in a version vector
	MaxRecord     = 32 << 20 // bytes of one encoded record
	MaxBatch      = 1000     // entries in one index response
	MaxBlocks     = 4096     // blocks in one block request
	MaxBlockBytes = 32 << 20 // bytes of data one block request may ask for
)

// Entry is one path of a folder as a node announces it: what it is, its
// content as chunk IDs, and its version.
type Entry struct {
	Path    string // slash-separated, relative to the folder root
	Seq     uint64 // the sender's sequence number of this version
	Type    string // "file", "dir" or "symlink"
	Deleted bool
	Size    int64  // file size in bytes
	Mode    uint32 // permission bits with setuid, setgid, sticky
	ModTime int64  // ns since the Unix epoch
	Target  string // symlink target
	Content []chunkstore.ID
	Lengths []uint32
	Vector  state.Vector
}

var typeCodes = map[string]byte{"file": 1, "dir": 2, "symlink": 3}
var typeNames = [...]string{1: "file", 2: "dir", 3: "symlink"}

const flagDeleted = 1

// FromState returns the announcement of a local index entry.
func FromState(rel string, e state.Entry) Entry {
	w := Entry{Path: rel, Seq: e.Version, Type: e.Type, Deleted: e.Deleted, Vector: e.Vector}
	if !e.Deleted {
		w.Size, w.Mode, w.ModTime, w.Target = e.Size, e.Mode, e.ModTime, e.Target
		w.Content, w.Lengths = e.Content, e.Lengths
	}
	return w
}

// State returns the local index entry for w, without the local facts
// (inode, ctime, owner) that only a stat of the applied file gives.
func (w *Entry) State() state.Entry {
	return state.Entry{Type: w.Type, Deleted: w.Deleted, Size: w.Size, Mode: w.Mode, ModTime: w.ModTime,
		Target: w.Target, Content: w.Content, Lengths: w.Lengths, Vector: w.Vector}
}

// AppendEntry appends the encoding of w:
//
//	type byte (1 file, 2 dir, 3 symlink), flags byte (1 = deleted),
//	uvarint Seq, uvarint len(Path), Path,
//	varint Size, uvarint Mode, varint ModTime, uvarint len(Target), Target,
//	uvarint n, n chunk IDs of 32 bytes, n uvarint lengths,
//	uvarint m, m pairs of uvarint node, value (the vector).
func AppendEntry(dst []byte, w *Entry) []byte {
	var flags byte
	if w.Deleted {
		flags = flagDeleted
	}
	dst = append(dst, typeCodes[w.Type], flags)
	dst = binary.AppendUvarint(dst, w.Seq)
	dst = appendString(dst, w.Path)
	dst = binary.AppendVarint(dst, w.Size)
	dst = binary.AppendUvarint(dst, uint64(w.Mode))
	dst = binary.AppendVarint(dst, w.ModTime)
	dst = appendString(dst, w.Target)
	dst = state.AppendChunks(dst, w.Content, w.Lengths)
	return w.Vector.Append(dst)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// DecodeEntry decodes and checks (see [Entry.Check]) one encoded entry.
// It does not retain b.
func DecodeEntry(b []byte) (Entry, error) {
	var w Entry
	d := binread.Reader{B: b}
	if t := d.Byte(); d.Err == nil {
		if int(t) >= len(typeNames) || typeNames[t] == "" {
			d.Fail(fmt.Errorf("unknown entry type %d", t))
		} else {
			w.Type = typeNames[t]
		}
	}
	flags := d.Byte()
	if d.Err == nil && flags&^flagDeleted != 0 {
		d.Fail(fmt.Errorf("unknown flags %#x", flags))
	}
	w.Deleted = flags&flagDeleted != 0
	w.Seq = d.Uvarint(1<<64 - 1)
	w.Path = d.String(MaxPath)
	w.Size = d.Varint()
	w.Mode = uint32(d.Uvarint(0o7777))
	w.ModTime = d.Varint()
	w.Target = d.String(MaxTarget)
	w.Content, w.Lengths = state.ReadChunks(&d, MaxChunk)
	w.Vector = state.ReadVector(&d, MaxVector)
	if d.Err == nil && len(d.B) > 0 {
		d.Fail(fmt.Errorf("%d trailing bytes", len(d.B)))
	}
	if d.Err != nil {
		return Entry{}, fmt.Errorf("entry: %w", d.Err)
	}
	if err := w.Check(); err != nil {
		return Entry{}, err
	}
	return w, nil
}

// Check reports what is wrong with w, naming its path: a path that is not
// a clean relative path inside the folder (see [CheckPath]), a size that
// does not add up, content on something that is not a file, an empty or
// malformed vector.
func (w *Entry) Check() error {
	if err := CheckPath(w.Path); err != nil {
		return err
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("entry %q: %s", w.Path, fmt.Sprintf(format, a...))
	}
	if _, ok := typeCodes[w.Type]; !ok {
		return bad("unknown type %q", w.Type)
	}
	if len(w.Vector) == 0 || !w.Vector.Valid() {
		return bad("invalid version vector")
	}
	if len(w.Lengths) != len(w.Content) {
		return bad("%d lengths for %d chunks", len(w.Lengths), len(w.Content))
	}
	if w.Deleted || w.Type != "file" {
		if len(w.Content) > 0 || w.Size != 0 {
			return bad("content on a %s", w.Type)
		}
	}
	if w.Type == "symlink" && !w.Deleted && (w.Target == "" || strings.IndexByte(w.Target, 0) >= 0) {
		return bad("bad symlink target")
	}
	if w.Type != "symlink" && w.Target != "" {
		return bad("target on a %s", w.Type)
	}
	if w.Size < 0 {
		return bad("negative size")
	}
	var sum int64
	for _, n := range w.Lengths {
		if n == 0 || n > MaxChunk {
			return bad("chunk length %d", n)
		}
		sum += int64(n)
	}
	if sum != w.Size {
		return bad("chunks add up to %d bytes, size is %d", sum, w.Size)
	}
	return nil
}

// CheckPath reports whether p is a path a peer may name: relative,
// names separated by single slashes, no name empty, ".", ".." or starting
// with syncd's own prefix (see [ownname.Prefix]), no NUL, within the length limits. The folder root
// itself ("") is not a path a peer may name.
func CheckPath(p string) error {
	if p == "" || len(p) > MaxPath {
		return fmt.Errorf("path %q: empty or too long", trim(p))
	}
	if strings.IndexByte(p, 0) >= 0 {
		return fmt.Errorf("path %q: NUL byte", trim(p))
	}
	for name := range strings.SplitSeq(p, "/") {
		switch {
		case name == "" || name == "." || name == "..":
			return fmt.Errorf("path %q: name %q not allowed", trim(p), name)
		case len(name) > MaxName:
			return fmt.Errorf("path %q: name too long", trim(p))
		case ownname.Is(name):
			return fmt.Errorf("path %q: reserved name %q", trim(p), name)
		}
	}
	return nil
}

// trim shortens what goes into an error message.
func trim(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
