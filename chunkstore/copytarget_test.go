package chunkstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/syncd/syncd/chunkstore/local"
	"github.com/syncd/syncd/crypto"
)

// A copy target names blobs as its source does (the same chunk-ID key)
// under an ID of its own; a repository made with plain Init does not.
func TestInitCopy(t *testing.T) {
	ctx := context.Background()
	idx, _ := age.GenerateX25519Identity()
	data, _ := age.GenerateX25519Identity()
	key := crypto.NewIndexKey(idx)
	open := func(init func(be *local.Backend) error) *Repository {
		be, err := local.Create(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if err := init(be); err != nil {
			t.Fatal(err)
		}
		r, err := Open(ctx, be, key)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Close)
		return r
	}
	plain := func(be *local.Backend) error {
		_, err := Init(ctx, be, key, InitOptions{DataRecipients: []string{data.Recipient().String()}})
		return err
	}
	src := open(plain)
	dst := open(func(be *local.Backend) error {
		_, err := InitCopy(ctx, be, key, src.Config(), time.Time{})
		return err
	})
	other := open(plain)
	blob := []byte("the same content")
	id := func(r *Repository) ID { return r.BlobID(r.NewHasher(), blob) }
	if id(src) != id(dst) {
		t.Errorf("a copy target names a blob %s, its source %s", id(dst).Short(), id(src).Short())
	}
	if id(src) == id(other) {
		t.Errorf("two repositories of one index key name a blob alike")
	}
	if dst.Config().ID == src.Config().ID || dst.Config().ChunkIDRepo != src.Config().ID {
		t.Errorf("copy target id %s, chunk_id_repo %s; source id %s", dst.Config().ID, dst.Config().ChunkIDRepo, src.Config().ID)
	}
	if err := CheckCopyTarget(src.Config(), dst.Config()); err != nil {
		t.Errorf("CheckCopyTarget of a copy target: %v", err)
	}
	// a copy target of a copy target derives from the first source
	dst2 := open(func(be *local.Backend) error {
		_, err := InitCopy(ctx, be, key, dst.Config(), time.Time{})
		return err
	})
	if id(dst2) != id(src) || CheckCopyTarget(dst.Config(), dst2.Config()) != nil || CheckCopyTarget(src.Config(), dst2.Config()) != nil {
		t.Errorf("a copy of a copy names blobs otherwise")
	}

	base := dst.Config()
	other2, _ := age.GenerateX25519Identity()
	for _, tt := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"polynomial", func(c *Config) { c.ChunkerPolynomial = other.Config().ChunkerPolynomial }, "chunks differently"},
		{"min chunk", func(c *Config) { c.MinChunk /= 2 }, "chunks differently"},
		{"index key", func(c *Config) { c.IndexRecipient = other2.Recipient().String() }, "another index key"},
		{"chunk ids", func(c *Config) { c.ChunkIDRepo = "" }, "derives its chunk IDs"},
		{"recipients", func(c *Config) { c.DataRecipients = append(c.DataRecipients, other2.Recipient().String()) }, "data recipients"},
		{"itself", func(c *Config) { c.ID = src.Config().ID }, "source repository itself"},
	} {
		c := base
		c.DataRecipients = append([]string(nil), base.DataRecipients...)
		tt.change(&c)
		if err := CheckCopyTarget(src.Config(), c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s differs: %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
}
