package chunkstore

import (
	"context"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/syncd/syncd/chunkstore/local"
	"github.com/syncd/syncd/crypto"
)

func TestHybridDataRecipientRefused(t *testing.T) {
	hybrid, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	be, err := local.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := crypto.NewIndexKey(newX25519(t))
	_, err = Init(context.Background(), be, key, InitOptions{DataRecipients: []string{hybrid.Recipient().String()}})
	if err == nil || !strings.Contains(err.Error(), "post-quantum") {
		t.Fatalf("Init with a hybrid data recipient: err = %v, want a refusal naming post-quantum keys", err)
	}
}

// TestX25519RecipientStartingWithPQ: an X25519 key whose bech32 data
// happens to begin with "pq" (1 key in 1,024) is not a post-quantum key.
// CI drew one and init refused it.
func TestX25519RecipientStartingWithPQ(t *testing.T) {
	const r = "age1pqxqlkhpamwqq6nku0llyg4qch5768xpy65vm4wc8ffv6x7nj45s40vv8u"
	be, err := local.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := crypto.NewIndexKey(newX25519(t))
	if _, err := Init(context.Background(), be, key, InitOptions{DataRecipients: []string{r}}); err != nil {
		t.Fatalf("Init with X25519 recipient %s: %v", r, err)
	}
}

func TestSaveAfterAbort(t *testing.T) {
	tr := initLocal(t, InitOptions{})
	r := tr.open(t, true)
	for i := range 50 {
		s := r.NewSaver(context.Background(), SaverOptions{})
		s.Abort()
		data := []byte{byte(i)}
		if _, err := s.Save(DataBlob, r.BlobID(r.NewHasher(), data), data); err == nil {
			t.Fatalf("Save after Abort succeeded")
		}
	}
}

func TestConfigPolynomialDegree(t *testing.T) {
	for _, p := range []string{"0x0", "0x1", "0x3", "0x7", "0x3da3358b4dc173 junk"} {
		c := Config{Version: FormatVersion, ChunkerPolynomial: p, MinChunk: DefaultMinChunk, MaxChunk: DefaultMaxChunk,
			PackSize: DefaultPackSize, DataRecipients: []string{"x"}}
		if err := c.validate(); err == nil {
			t.Errorf("validate accepts chunker polynomial %q, which the chunker refuses", p)
		}
	}
}
