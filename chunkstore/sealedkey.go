package chunkstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"filippo.io/age"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/crypto"
)

// SealedKeyName is the object that holds the index key sealed to the data
// recipients: a standard age file whose plaintext is an age identity file
// (the index key file as age-keygen writes it). With it, a data identity
// alone opens the whole repository (docs/RECOVERY.md). It holds nothing but
// the index key, which every writer node already has, so a writer node may
// write it.
const SealedKeyName = keysPrefix + "index-sealed"

// ErrNoSealedKey is matched by the error of UnsealIndexKey for a repository
// that holds no sealed index key (made before it existed, and not written
// to since).
var ErrNoSealedKey = errors.New("the repository holds no sealed index key")

// sealIndexKey returns the index key file sealed to cfg's data recipients.
func sealIndexKey(key *crypto.IndexKey, cfg Config) ([]byte, error) {
	x, ok := key.Identity().(*age.X25519Identity)
	if !ok {
		return nil, errors.New("seal index key: not an X25519 identity")
	}
	var rcpts []age.Recipient
	for _, s := range cfg.DataRecipients {
		rc, err := crypto.ParseRecipient(s)
		if err != nil {
			return nil, fmt.Errorf("seal index key: %w", err)
		}
		rcpts = append(rcpts, rc)
	}
	plain := fmt.Sprintf("# syncd index key of repository %s\n# public key: %s\n%s\n", cfg.ID, x.Recipient(), x)
	return crypto.Seal(nil, []byte(plain), rcpts...)
}

// ensureSealedKey writes the sealed index key when the repository has none
// (one made before the object existed). It does one Stat per Repository,
// and tries the write once.
func (r *Repository) ensureSealedKey(ctx context.Context) error {
	if r.sealed.Swap(true) {
		return nil
	}
	_, err := r.raw.Stat(ctx, SealedKeyName)
	if errors.Is(err, backend.ErrNotExist) {
		var sealed []byte
		if sealed, err = sealIndexKey(r.key, r.cfg); err == nil {
			err = backend.SaveBytes(ctx, r.raw, SealedKeyName, sealed)
		}
	}
	if err != nil {
		return fmt.Errorf("write the sealed index key %s: %w", SealedKeyName, err)
	}
	return nil
}

// UnsealIndexKey reads the sealed index key of the repository in be and
// opens it with the data identities. The key is not yet authenticated:
// Open checks it against the config (its public key and the config MAC),
// so a sealed key swapped by a writer node is refused there.
func UnsealIndexKey(ctx context.Context, be backend.Backend, ids []age.Identity) (*crypto.IndexKey, error) {
	sealed, err := backend.ReadAll(ctx, generation(be, plainPrefix(ctx, be)), SealedKeyName)
	if errors.Is(err, backend.ErrNotExist) {
		return nil, ErrNoSealedKey
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", SealedKeyName, err)
	}
	plain, err := crypto.Open(sealed, ids...)
	if err != nil {
		if errors.Is(err, crypto.ErrNoKey) {
			return nil, fmt.Errorf("the data identity does not open %s: %w", SealedKeyName, err)
		}
		return nil, fmt.Errorf("%s: %v: %w", SealedKeyName, err, ErrCorrupt)
	}
	parsed, err := age.ParseIdentities(bytes.NewReader(plain))
	if err != nil || len(parsed) != 1 {
		return nil, fmt.Errorf("%s: not one age identity: %w", SealedKeyName, ErrCorrupt)
	}
	x, ok := parsed[0].(*age.X25519Identity)
	if !ok {
		return nil, fmt.Errorf("%s: not an X25519 identity: %w", SealedKeyName, ErrCorrupt)
	}
	return crypto.NewIndexKey(x), nil
}
