package chunkstore

import "testing"

func TestMirrorPolIrreducible(t *testing.T) {
	if !mirrorPol.Irreducible() {
		t.Fatal("mirror polynomial is reducible")
	}
	a, b := MirrorChunking(), MirrorChunking()
	if a.Fingerprint() != b.Fingerprint() {
		t.Fatal("fingerprint not stable")
	}
	b.Min++
	if a.Fingerprint() == b.Fingerprint() {
		t.Fatal("fingerprint ignores min")
	}
}
