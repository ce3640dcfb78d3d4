package chunkstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"filippo.io/age"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/crypto"
)

// recipients are what new objects are sealed to: content packs to data,
// everything else to meta (the index recipient and data).
type recipients struct {
	data, meta []age.Recipient
	list       []string // cfg.DataRecipients they were made from
	// dataFP and metaFP are the fingerprints of data and meta, sorted: what
	// the index records of a pack sealed to them (IndexPack.SealedTo)
	dataFP, metaFP []string
}

// setRecipients makes cfg's recipients the ones new objects are sealed to,
// unless they are already.
func (r *Repository) setRecipients(cfg Config) error {
	if cur := r.rcpt.Load(); cur != nil && slices.Equal(cur.list, cfg.DataRecipients) {
		return nil
	}
	rc := &recipients{meta: []age.Recipient{r.key.Recipient()}, list: slices.Clone(cfg.DataRecipients)}
	for _, s := range cfg.DataRecipients {
		x, err := crypto.ParseRecipient(s)
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		rc.data = append(rc.data, x)
		rc.meta = append(rc.meta, x)
	}
	rc.dataFP = fingerprints(cfg.DataRecipients)
	rc.metaFP = fingerprints(append([]string{r.key.Recipient().String()}, cfg.DataRecipients...))
	r.rcpt.Store(rc)
	return nil
}

// fingerprints returns the fingerprints of the recipients rcpts, sorted.
func fingerprints(rcpts []string) []string {
	out := make([]string, len(rcpts))
	for i, s := range rcpts {
		out[i] = crypto.Fingerprint(s)
	}
	slices.Sort(out)
	return out
}

// DataRecipients returns the data recipients new content packs are sealed
// to: the config's as of the last write session's start.
func (r *Repository) DataRecipients() []string { return slices.Clone(r.rcpt.Load().list) }

// SealedTo returns the fingerprints, sorted, of the recipients new packs of
// type t are sealed to (the data recipients for content packs; the index
// recipient and the data recipients for tree packs), as the index records
// them for each pack written ([IndexPack].SealedTo).
func (r *Repository) SealedTo(t BlobType) []string {
	if t == DataBlob {
		return slices.Clone(r.rcpt.Load().dataFP)
	}
	return slices.Clone(r.rcpt.Load().metaFP)
}

// KeyInfo is one key of the repository, as `restore key list` shows it.
type KeyInfo struct {
	Role        string `json:"role"` // "index" or "data"
	Recipient   string `json:"recipient"`
	Fingerprint string `json:"fingerprint"`
	// InConfig is true for the keys the config names: the index recipient
	// and the data recipients new objects are sealed to. A keys/ object
	// of a key removed from the config (restore key remove) is not.
	InConfig bool   `json:"in_config"`
	Object   string `json:"object,omitempty"` // its keys/ object, if any
}

// Keys lists the repository's keys: those of the config (read afresh)
// and those of the keys/ objects, config's first.
func (r *Repository) Keys(ctx context.Context) ([]KeyInfo, error) {
	cfg, err := LoadConfig(ctx, r.raw, r.key)
	if err != nil {
		return nil, err
	}
	out := []KeyInfo{{Role: "index", Recipient: cfg.IndexRecipient, InConfig: true}}
	for _, d := range cfg.DataRecipients {
		out = append(out, KeyInfo{Role: "data", Recipient: d, InConfig: true})
	}
	for i := range out {
		out[i].Fingerprint = crypto.Fingerprint(out[i].Recipient)
	}
	err = r.raw.List(ctx, keysPrefix, func(fi backend.Info) error {
		if fi.Name == SealedKeyName {
			return nil
		}
		body, err := backend.ReadAll(ctx, r.raw, fi.Name)
		if err != nil {
			return err
		}
		var k keyInfo
		if err := json.Unmarshal(body, &k); err != nil {
			return fmt.Errorf("%s: not a key object: %v", fi.Name, err)
		}
		for i := range out {
			if out[i].Role == k.Role && out[i].Recipient == k.Recipient {
				out[i].Object = fi.Name
				return nil
			}
		}
		out = append(out, KeyInfo{Role: k.Role, Recipient: k.Recipient, Fingerprint: crypto.Fingerprint(k.Recipient), Object: fi.Name})
		return nil
	})
	return out, err
}

// ErrLastRecipient is matched by RemoveDataRecipient's refusal to remove
// the only data recipient.
var ErrLastRecipient = errors.New("it is the last data recipient: file contents would be sealed to no one")

// AddDataRecipient adds the age recipient rcpt to the config's data
// recipients: content packs written from then on are sealed to it too
// (packs written before stay as they are). It needs an exclusive write
// session (no two key changes at once). The writes, in order: the key
// object keys/data-<fingerprint>; the sealed index key, sealed to every
// recipient; the config, with a new MAC. The config is the switch: a
// crash before it leaves the repository as it was (plus a key object and
// a sealed key that the old recipients still open).
func (r *Repository) AddDataRecipient(ctx context.Context, sess *Session, rcpt string) (Config, error) {
	rcpt = strings.TrimSpace(rcpt)
	if _, err := crypto.ParseRecipient(rcpt); err != nil {
		return Config{}, err
	}
	cfg, err := r.keyChangeConfig(ctx, sess)
	if err != nil {
		return Config{}, err
	}
	if slices.Contains(cfg.DataRecipients, rcpt) {
		return Config{}, fmt.Errorf("data recipient %s is already in the config", rcpt)
	}
	cfg.DataRecipients = append(cfg.DataRecipients, rcpt)
	k := keyInfo{Role: "data", Recipient: rcpt, Fingerprint: crypto.Fingerprint(rcpt)}
	body, _ := json.MarshalIndent(k, "", "  ")
	if err := backend.SaveBytes(ctx, r.be, keysPrefix+"data-"+k.Fingerprint, body); err != nil {
		return Config{}, fmt.Errorf("add data recipient: %w", err)
	}
	if err := r.saveSealedKey(ctx, cfg); err != nil {
		return Config{}, err
	}
	return cfg, r.saveConfig(ctx, cfg)
}

// RemoveDataRecipient removes rcpt from the config's data recipients:
// content packs written from then on are not sealed to it (packs written
// before still are, until `restore prune --repack` rewrites them). It
// refuses to remove the last one (ErrLastRecipient). The writes, in order:
// the config (the switch); the sealed index key, sealed to the recipients
// left; then the key object is removed (a store that refuses the delete
// leaves it, listed by Keys as not in the config).
func (r *Repository) RemoveDataRecipient(ctx context.Context, sess *Session, rcpt string) (Config, error) {
	rcpt = strings.TrimSpace(rcpt)
	cfg, err := r.keyChangeConfig(ctx, sess)
	if err != nil {
		return Config{}, err
	}
	i := slices.Index(cfg.DataRecipients, rcpt)
	if i < 0 {
		return Config{}, fmt.Errorf("data recipient %s is not in the config (restore key list shows them)", rcpt)
	}
	if len(cfg.DataRecipients) == 1 {
		return Config{}, fmt.Errorf("data recipient %s: %w; add another first", rcpt, ErrLastRecipient)
	}
	cfg.DataRecipients = slices.Delete(cfg.DataRecipients, i, i+1)
	if err := r.saveConfig(ctx, cfg); err != nil {
		return Config{}, err
	}
	if err := r.saveSealedKey(ctx, cfg); err != nil {
		return cfg, err
	}
	if err := r.be.Remove(ctx, keysPrefix+"data-"+crypto.Fingerprint(rcpt)); err != nil && !errors.Is(err, backend.ErrNotExist) {
		return cfg, fmt.Errorf("the recipient is removed from the config, but its key object stays: %w", err)
	}
	return cfg, nil
}

// keyChangeConfig returns the config as stored, checking that sess is an
// exclusive session of r.
func (r *Repository) keyChangeConfig(ctx context.Context, sess *Session) (Config, error) {
	if sess == nil || sess.r != r || sess.lock == nil || !sess.lock.info.Exclusive {
		return Config{}, errors.New("a key change needs an exclusive write session")
	}
	if err := sess.lock.Check(); err != nil {
		return Config{}, err
	}
	cfg, err := LoadConfig(ctx, r.raw, r.key)
	if err != nil {
		return Config{}, err
	}
	cfg.DataRecipients = slices.Clone(cfg.DataRecipients)
	return cfg, nil
}

// saveSealedKey writes the index key sealed to cfg's data recipients over
// the one stored.
func (r *Repository) saveSealedKey(ctx context.Context, cfg Config) error {
	sealed, err := sealIndexKey(r.key, cfg)
	if err == nil {
		err = backend.SaveBytes(ctx, r.be, SealedKeyName, sealed)
	}
	if err != nil {
		return fmt.Errorf("write the sealed index key %s: %w", SealedKeyName, err)
	}
	return nil
}

// saveConfig writes cfg, with its MAC, over the config object and makes
// its recipients the ones this repository seals to.
func (r *Repository) saveConfig(ctx context.Context, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	cfg.MAC = cfg.mac(r.key)
	body, _ := json.MarshalIndent(cfg, "", "  ")
	if err := backend.SaveBytes(ctx, r.be, configName, body); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return r.setRecipients(cfg)
}
