package tlsid

import (
	"crypto/sha256"
	"strings"
	"testing"
)

func TestNodeIDString(t *testing.T) {
	id := NodeID(sha256.Sum256([]byte("node")))
	s := id.String()
	groups := strings.Split(s, "-")
	if len(s) != 59 || len(groups) != 8 {
		t.Fatalf("String() = %q: %d characters in %d groups, want 59 in 8", s, len(s), len(groups))
	}
	for i, g := range groups {
		want := 7
		if i == 7 {
			want = 3
		}
		if len(g) != want {
			t.Errorf("group %d %q has %d characters, want %d", i, g, len(g), want)
		}
	}
	if s != strings.ToUpper(s) {
		t.Errorf("String() = %q, want upper case", s)
	}
	if got := id.Short(); got != s[:7] {
		t.Errorf("Short() = %q, want %q", got, s[:7])
	}
	var zero NodeID
	if got, want := zero.String(), "AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAA"; got != want {
		t.Errorf("zero String() = %q, want %q", got, want)
	}
}

func TestNodeIDUint64(t *testing.T) {
	var id NodeID
	copy(id[:], []byte{1, 2, 3, 4, 5, 6, 7, 8, 9})
	if got, want := id.Uint64(), uint64(0x0102030405060708); got != want {
		t.Errorf("Uint64() = %#x, want %#x", got, want)
	}
}

func TestParseNodeID(t *testing.T) {
	id := NodeID(sha256.Sum256([]byte("node")))
	s := id.String()
	for _, in := range []string{
		s,
		strings.ReplaceAll(s, "-", ""),
		strings.ToLower(s),
		strings.ToLower(strings.ReplaceAll(s, "-", "")),
	} {
		got, err := ParseNodeID(in)
		if err != nil {
			t.Errorf("ParseNodeID(%q): %v", in, err)
			continue
		}
		if got != id {
			t.Errorf("ParseNodeID(%q) = %s, want %s", in, got, id)
		}
	}
}

func TestParseNodeIDErrors(t *testing.T) {
	s := NodeID(sha256.Sum256([]byte("node"))).String()
	// The last character encodes one bit of the ID and four zero bits:
	// "B" (1) sets one of the zero bits, so it is not a canonical ID.
	noncanon := strings.ReplaceAll(s, "-", "")[:51] + "B"
	for _, tt := range []struct{ in, want string }{
		{"", "0 base32 characters, want 52"},
		{s[:58], "51 base32 characters, want 52"},
		{s + "A", "53 base32 characters, want 52"},
		{strings.Replace(s, s[:1], "1", 1), `character '1' is not base32`},
		{strings.Replace(s, s[:1], "=", 1), `character '=' is not base32`},
		{strings.Replace(s, s[:1], "é", 1), `character 'é' is not base32`},
		{"<node ID printed by `syncd id` on web2>", "is not base32"},
		{noncanon, "last character 'B' cannot end an ID"},
	} {
		_, err := ParseNodeID(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseNodeID(%q) error = %v, want one saying %q", tt.in, err, tt.want)
		}
	}
}

func FuzzParseNodeID(f *testing.F) {
	id := NodeID(sha256.Sum256([]byte("node")))
	f.Add(id.String())
	f.Add(strings.ToLower(strings.ReplaceAll(id.String(), "-", "")))
	f.Add("")
	f.Add("AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAB")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseNodeID(s)
		if err != nil {
			if id != (NodeID{}) {
				t.Errorf("ParseNodeID(%q) failed but returned %s", s, id)
			}
			return
		}
		// One ID per string: what parses prints back as the same
		// characters, dashes and case aside.
		norm := strings.ToUpper(strings.ReplaceAll(s, "-", ""))
		if got := strings.ReplaceAll(id.String(), "-", ""); got != norm {
			t.Errorf("ParseNodeID(%q) = %s, which prints as %q", s, id, got)
		}
		again, err := ParseNodeID(id.String())
		if err != nil || again != id {
			t.Errorf("ParseNodeID(%q) = %s, %v; want %s", id.String(), again, err, id)
		}
	})
}
