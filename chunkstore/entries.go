package chunkstore

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"time"
	"unicode/utf8"
)

// Entry is what a listing of a snapshot needs of one directory entry:
// the fields of a Node that say where it is and what it holds, without
// its metadata.
type Entry struct {
	Name    string // the exact name bytes (Node.FileName)
	Type    string // NodeFile, NodeDir or NodeSymlink
	Size    uint64
	Content []ID   // data blobs, for files
	Subtree ID     // tree blob, for directories
	Target  string // the exact symlink target bytes (Node.LinkTarget)
}

// DecodeEntries decodes and validates a tree blob as DecodeTree does and
// returns its entries: it accepts exactly the blobs DecodeTree accepts,
// with the same names, types, sizes, content and targets. It reads the
// form EncodeTree writes (no whitespace, no escapes, known keys in
// lower case) itself, several times faster than DecodeTree, and hands any
// other blob to DecodeTree: every name, type and mode still goes through
// DecodeTree's checks, and every time through time.Time's own parser.
func DecodeEntries(data []byte) ([]Entry, error) {
	if ents, ok := decodeEntriesFast(data); ok {
		return ents, nil
	}
	t, err := DecodeTree(data)
	if err != nil {
		return nil, err
	}
	ents := make([]Entry, len(t.Nodes))
	for i := range t.Nodes {
		n := &t.Nodes[i]
		ents[i] = Entry{Name: n.FileName(), Type: n.Type, Size: n.Size, Content: n.Content, Target: n.LinkTarget()}
		if n.Subtree != nil {
			ents[i].Subtree = *n.Subtree
		}
	}
	return ents, nil
}

// LoadEntries reads tree blob id and decodes it with DecodeEntries.
func (r *Repository) LoadEntries(ctx context.Context, id ID) ([]Entry, error) {
	data, p, err := r.trees.read(ctx, id)
	if err != nil {
		return nil, err
	}
	ents, err := DecodeEntries(data)
	if err != nil {
		return nil, fmt.Errorf("tree %s in %s: %v: %w", id.Short(), p.Name(), err, ErrCorrupt)
	}
	return ents, nil
}

// The keys of a node, as bits of a set (a key twice sends the blob to
// DecodeTree, which keeps the last).
const (
	keyName = 1 << iota
	keyType
	keyMode
	keyMtime
	keyCtime
	keyUID
	keyGID
	keyInode
	keyDevice
	keyLinks
	keySize
	keyContent
	keySubtree
	keyTarget
)

// decodeEntriesFast decodes data when it has the form EncodeTree writes
// and passes DecodeTree's checks; ok is false for anything else (which
// may still be a valid tree: DecodeTree decides).
func decodeEntriesFast(data []byte) (ents []Entry, ok bool) {
	s := scanner{b: data}
	if string(data) == `{"nodes":null}` { // an empty directory
		return nil, true
	}
	if !s.lit(`{"nodes":[`) {
		return nil, false
	}
	ents = make([]Entry, 0, bytes.Count(data, []byte(`},{"name"`))+1)
	var ids []ID // the content of every file, one array per tree
	prev := ""
	for i := 0; !s.lit("]}"); i++ {
		if i > 0 && !s.lit(",") {
			return nil, false
		}
		var e Entry
		var n Node // the fields DecodeTree's checks look at
		var seen int
		if !s.lit("{") {
			return nil, false
		}
		for j := 0; !s.lit("}"); j++ {
			if j > 0 && !s.lit(",") {
				return nil, false
			}
			key, ok := s.str()
			if !ok || !s.lit(":") {
				return nil, false
			}
			bit := nodeKey(key)
			if bit == 0 || seen&bit != 0 {
				return nil, false
			}
			seen |= bit
			switch bit {
			case keyName, keyType, keyTarget:
				v, ok := s.str()
				if !ok {
					return nil, false
				}
				switch bit {
				case keyName:
					e.Name = string(v)
				case keyType:
					e.Type = nodeType(v)
				case keyTarget:
					e.Target = string(v)
				}
			case keyMode, keyUID, keyGID:
				v, ok := s.uint(math.MaxUint32)
				if !ok {
					return nil, false
				}
				if bit == keyMode {
					n.Mode = uint32(v)
				}
			case keyInode, keyDevice, keyLinks, keySize:
				v, ok := s.uint(math.MaxUint64)
				if !ok {
					return nil, false
				}
				if bit == keySize {
					e.Size = v
				}
			case keyMtime, keyCtime:
				start := s.i
				if _, ok := s.str(); !ok {
					return nil, false
				}
				var t time.Time // as encoding/json does: the literal, quotes and all
				if t.UnmarshalJSON(data[start:s.i]) != nil {
					return nil, false
				}
			case keyContent:
				if !s.lit("[") {
					return nil, false
				}
				first := len(ids)
				for k := 0; !s.lit("]"); k++ {
					if k > 0 && !s.lit(",") {
						return nil, false
					}
					v, ok := s.str()
					if !ok {
						return nil, false
					}
					ids = append(ids, ID{})
					if !parseID(&ids[len(ids)-1], v) {
						return nil, false
					}
				}
				e.Content = ids[first:len(ids):len(ids)]
			case keySubtree:
				v, ok := s.str()
				if !ok || !parseID(&e.Subtree, v) {
					return nil, false
				}
				n.Subtree = &e.Subtree
			}
		}
		n.Name, n.Type, n.Content, n.Target = e.Name, e.Type, e.Content, e.Target
		if checkNode(&n, i, prev) != nil {
			return nil, false
		}
		prev = e.Name
		ents = append(ents, e)
	}
	if s.i != len(data) {
		return nil, false
	}
	return ents, true
}

// nodeKey returns the bit of a node's key, 0 for a key this decoder does
// not read.
func nodeKey(key []byte) int {
	switch string(key) {
	case "name":
		return keyName
	case "type":
		return keyType
	case "mode":
		return keyMode
	case "mtime":
		return keyMtime
	case "ctime":
		return keyCtime
	case "uid":
		return keyUID
	case "gid":
		return keyGID
	case "inode":
		return keyInode
	case "device":
		return keyDevice
	case "links":
		return keyLinks
	case "size":
		return keySize
	case "content":
		return keyContent
	case "subtree":
		return keySubtree
	case "target":
		return keyTarget
	}
	return 0
}

// parseID is ID.UnmarshalText (ParseID's checks) without its copies of b.
func parseID(id *ID, b []byte) bool {
	if len(b) != 2*len(id) {
		return false
	}
	_, err := hex.Decode(id[:], b)
	return err == nil
}

// nodeType returns b as a string, without allocating for the known types.
func nodeType(b []byte) string {
	switch string(b) {
	case NodeFile:
		return NodeFile
	case NodeDir:
		return NodeDir
	case NodeSymlink:
		return NodeSymlink
	}
	return string(b)
}

// scanner reads the JSON of a tree blob in the one form EncodeTree writes.
type scanner struct {
	b []byte
	i int
}

// lit consumes lit if the input continues with it.
func (s *scanner) lit(lit string) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	s.i += len(lit)
	return true
}

// str consumes a string and returns its bytes: only a string without
// escapes or control characters whose bytes are valid UTF-8, which
// encoding/json decodes to the same bytes.
func (s *scanner) str() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	ascii := true
	for j := s.i + 1; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c == '"':
			v := s.b[s.i+1 : j]
			if !ascii && !utf8.Valid(v) {
				return nil, false
			}
			s.i = j + 1
			return v, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// uint consumes a JSON number that is a whole number no larger than max,
// written without a sign, fraction or exponent.
func (s *scanner) uint(max uint64) (uint64, bool) {
	j := s.i
	var v uint64
	for ; j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9'; j++ {
		d := uint64(s.b[j] - '0')
		if v > (max-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	// JSON allows no leading zero; a fraction or exponent follows no
	// number this reads
	if j == s.i || (s.b[s.i] == '0' && j-s.i > 1) || (j < len(s.b) && (s.b[j] == '.' || s.b[j] == 'e' || s.b[j] == 'E')) {
		return 0, false
	}
	s.i = j
	return v, true
}
