package chunkstore

import (
	"io/fs"
	"testing"
)

func TestModeBits(t *testing.T) {
	for _, bits := range []uint32{0, 0o644, 0o755, 0o4755, 0o2750, 0o1777, 0o7777} {
		if got := ModeBits(FileMode(bits)); got != bits {
			t.Errorf("%o → %v → %o", bits, FileMode(bits), got)
		}
	}
	if got := ModeBits(fs.ModeDir | fs.ModeSetgid | 0o750); got != 0o2750 {
		t.Errorf("directory bits: %o", got)
	}
}
