package crypto_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"filippo.io/age"

	"github.com/syncd/syncd/crypto"
)

// fuzzIdentity is a fixed identity, used only by the fuzz tests, so that
// corpus entries sealed to it stay meaningful across runs.
const fuzzIdentity = "AGE-SECRET-KEY-1XQMKLG39R2KQJRYN46K2F8QEHN53MDD04CRT2NQQ7QKWQD60NWMSKEMSFJ"

// FuzzOpen feeds arbitrary bytes to the decrypting functions. None may
// panic, and they must agree: what Open accepts, OpenReaderAt reads the same
// and CheckHeader passes; what Open refuses for want of a key, CheckHeader
// refuses the same way.
func FuzzOpen(f *testing.F) {
	id, err := age.ParseX25519Identity(fuzzIdentity)
	if err != nil {
		f.Fatal(err)
	}
	other, err := age.GenerateX25519Identity()
	if err != nil {
		f.Fatal(err)
	}
	// Small seeds: a mutated seed is minimized by re-running it, byte by
	// byte, so a large one stalls the fuzzer.
	for _, pt := range [][]byte{nil, []byte("hello"), bytes.Repeat([]byte("abc"), 100)} {
		for _, r := range [][]age.Recipient{{id.Recipient()}, {other.Recipient()}, {other.Recipient(), id.Recipient()}} {
			sealed, err := crypto.Seal(nil, pt, r...)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(sealed)
		}
	}
	f.Add([]byte("age-encryption.org/v1\n-> X25519 AAAA\n\n--- AAAA\n"))
	f.Add([]byte("age-encryption.org/v1\n-> scrypt c2FsdA 40\nAAAA\n--- AAAA\n"))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		pt, err := crypto.Open(data, id)
		hdrErr := crypto.CheckHeader(data, id)
		if err != nil {
			if errors.Is(err, crypto.ErrNoKey) && !errors.Is(hdrErr, crypto.ErrNoKey) {
				t.Errorf("Open: %v (no key), but CheckHeader: %v", err, hdrErr)
			}
			return
		}
		if hdrErr != nil {
			t.Errorf("Open accepted the file, CheckHeader: %v", hdrErr)
		}
		ra, n, err := crypto.OpenReaderAt(bytes.NewReader(data), int64(len(data)), id)
		if err != nil {
			t.Fatalf("Open accepted the file, OpenReaderAt: %v", err)
		}
		if n != int64(len(pt)) {
			t.Fatalf("OpenReaderAt size = %d, Open returned %d bytes", n, len(pt))
		}
		got := make([]byte, n)
		if m, err := ra.ReadAt(got, 0); m != len(got) || (err != nil && err != io.EOF) {
			t.Fatalf("OpenReaderAt ReadAt = %d, %v; want %d bytes", m, err, len(got))
		}
		if !bytes.Equal(got, pt) {
			t.Errorf("OpenReaderAt and Open disagree on the plaintext")
		}
	})
}
