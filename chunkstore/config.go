package chunkstore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/restic/chunker"

	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/crypto"
)

// FormatVersion is the repository format this code writes and reads.
const FormatVersion = 1

// RotatedFormatVersion is the format of a repository whose index key was
// rotated (docs/adr/0003-index-key-rotation.md): version 1 plus
// Config.MetaPrefix and Config.ChunkIDKey. A syncd that knows only
// version 1 refuses it rather than derive a wrong chunk-ID key.
const RotatedFormatVersion = 2

// Defaults for new repositories.
const (
	DefaultMinChunk = 512 << 10
	DefaultMaxChunk = 8 << 20
	DefaultPackSize = 16 << 20
)

// Config is the repository's "config" object: stored in plain JSON and
// authenticated with a MAC under a key derived from the index identity, so
// nobody without that key can change the chunker or swap the recipients.
type Config struct {
	Version           int       `json:"version"`
	ID                string    `json:"id"`
	Created           time.Time `json:"created"`
	ChunkerPolynomial string    `json:"chunker_polynomial"`
	MinChunk          int       `json:"min_chunk_size"`
	MaxChunk          int       `json:"max_chunk_size"`
	PackSize          int       `json:"pack_size"`
	IndexRecipient    string    `json:"index_recipient"`
	DataRecipients    []string  `json:"data_recipients"`
	// ChunkIDRepo is set in a copy target (InitCopy): the ID of the
	// repository whose chunk-ID key this one uses, so that blob IDs, and
	// with them packs, trees and snapshots, are the same in both. Empty:
	// the repository's own ID.
	ChunkIDRepo string `json:"chunk_id_repo,omitempty"`
	// MetaPrefix, ChunkIDKey and RotatedFrom are set by an index-key
	// rotation (RotateIndexKey, format version 2): the metadata objects
	// live under MetaPrefix ("g-<fingerprint>/"), ChunkIDKey is the
	// chunk-ID key (which a rotation keeps) sealed to the index and data
	// recipients, base64, and RotatedFrom is the metadata prefix before
	// ("/" for none), whose leftovers a rotation run again deletes.
	MetaPrefix  string `json:"meta_prefix,omitempty"`
	ChunkIDKey  string `json:"chunk_id_key,omitempty"`
	RotatedFrom string `json:"rotated_from,omitempty"`
	MAC         string `json:"mac"`
}

// ChunkIDSource returns the repository ID the chunk-ID key derives from:
// ChunkIDRepo, or the repository's own ID.
func (c Config) ChunkIDSource() string {
	if c.ChunkIDRepo != "" {
		return c.ChunkIDRepo
	}
	return c.ID
}

// keyInfo is a "keys/<fingerprint>" object: public information only.
type keyInfo struct {
	Role        string `json:"role"` // "index" or "data"
	Recipient   string `json:"recipient"`
	Fingerprint string `json:"fingerprint"`
}

func (c Config) mac(key *crypto.IndexKey) string {
	c.MAC = ""
	body, err := json.Marshal(c)
	if err != nil {
		panic("marshal config: " + err.Error())
	}
	m := hmac.New(sha256.New, key.ConfigMACKey(c.ID))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Polynomial returns the chunker polynomial.
func (c Config) Polynomial() (chunker.Pol, error) {
	hex, ok := strings.CutPrefix(c.ChunkerPolynomial, "0x")
	p, err := strconv.ParseUint(hex, 16, 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("config: invalid chunker polynomial %q", short(c.ChunkerPolynomial))
	}
	pol := chunker.Pol(p)
	// The chunker needs an irreducible polynomial of degree 53.
	if pol.Deg() != 53 || !pol.Irreducible() {
		return 0, fmt.Errorf("config: chunker polynomial %q is not an irreducible polynomial of degree 53", short(c.ChunkerPolynomial))
	}
	return pol, nil
}

func (c Config) validate() error {
	switch {
	case c.Version == RotatedFormatVersion && c.MetaPrefix != "" && c.ChunkIDKey != "":
	case c.Version == FormatVersion && c.MetaPrefix == "" && c.ChunkIDKey == "":
	case c.Version == FormatVersion || c.Version == RotatedFormatVersion:
		return fmt.Errorf("config: format version %d with meta_prefix %q and chunk_id_key %t: not a valid combination", c.Version, c.MetaPrefix, c.ChunkIDKey != "")
	default:
		return fmt.Errorf("config: repository format version %d, this syncd reads versions %d and %d", c.Version, FormatVersion, RotatedFormatVersion)
	}
	if _, err := c.Polynomial(); err != nil {
		return err
	}
	if c.MinChunk < 64<<10 || c.MaxChunk < c.MinChunk || c.MaxChunk > 64<<20 {
		return fmt.Errorf("config: chunk sizes %d..%d out of range", c.MinChunk, c.MaxChunk)
	}
	if c.PackSize < 1<<20 || c.PackSize > 512<<20 {
		return fmt.Errorf("config: pack size %d out of range", c.PackSize)
	}
	if len(c.DataRecipients) == 0 {
		return errors.New("config: no data recipients")
	}
	if c.ChunkIDRepo != "" {
		if _, err := ParseID(c.ChunkIDRepo); err != nil {
			return fmt.Errorf("config: chunk_id_repo %q is not a repository ID", short(c.ChunkIDRepo))
		}
	}
	return nil
}

// InitOptions are the settings of a new repository.
type InitOptions struct {
	DataRecipients []string // age public keys for file contents (at least one)
	PackSize       int      // 0: DefaultPackSize
	Now            time.Time
}

// ErrAlreadyInitialized is returned by Init for a repository that exists.
var ErrAlreadyInitialized = errors.New("repository already initialized")

// Init writes the config and keys of a new repository to be.
func Init(ctx context.Context, be backend.Backend, key *crypto.IndexKey, opts InitOptions) (Config, error) {
	if _, err := be.Stat(ctx, configName); err == nil {
		return Config{}, ErrAlreadyInitialized
	} else if !errors.Is(err, backend.ErrNotExist) {
		return Config{}, fmt.Errorf("init: %w", err)
	}
	if len(opts.DataRecipients) == 0 {
		return Config{}, errors.New("init: at least one data recipient (age1…) is required")
	}
	for _, r := range opts.DataRecipients {
		rec, err := crypto.ParseRecipient(r)
		if err != nil {
			return Config{}, fmt.Errorf("init: %w", err)
		}
		if _, x25519 := rec.(*age.X25519Recipient); !x25519 {
			// Metadata is sealed to the X25519 index key and the data
			// recipients together, and age does not mix the two kinds.
			return Config{}, fmt.Errorf("init: data recipient %s…: post-quantum age keys are not supported yet; use an X25519 key (age1…, from syncd keygen)", r[:12])
		}
	}
	pol, err := chunker.RandomPolynomial()
	if err != nil {
		return Config{}, fmt.Errorf("init: %w", err)
	}
	if opts.PackSize == 0 {
		opts.PackSize = DefaultPackSize
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	cfg := Config{
		Version:           FormatVersion,
		ID:                RandomID().String(),
		Created:           opts.Now.UTC().Truncate(time.Second),
		ChunkerPolynomial: fmt.Sprintf("0x%x", uint64(pol)),
		MinChunk:          DefaultMinChunk,
		MaxChunk:          DefaultMaxChunk,
		PackSize:          opts.PackSize,
		IndexRecipient:    key.Recipient().String(),
		DataRecipients:    opts.DataRecipients,
	}
	return initConfig(ctx, be, key, cfg)
}

// initConfig writes the keys, the sealed index key and, last, cfg (its
// MAC computed here) to be.
func initConfig(ctx context.Context, be backend.Backend, key *crypto.IndexKey, cfg Config) (Config, error) {
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	cfg.MAC = cfg.mac(key)
	keys := []keyInfo{{Role: "index", Recipient: cfg.IndexRecipient}}
	for _, r := range cfg.DataRecipients {
		keys = append(keys, keyInfo{Role: "data", Recipient: r})
	}
	for _, k := range keys {
		k.Fingerprint = crypto.Fingerprint(k.Recipient)
		body, _ := json.MarshalIndent(k, "", "  ")
		if err := backend.SaveBytes(ctx, be, keysPrefix+k.Role+"-"+k.Fingerprint, body); err != nil {
			return Config{}, fmt.Errorf("init: %w", err)
		}
	}
	sealed, err := sealIndexKey(key, cfg)
	if err != nil {
		return Config{}, fmt.Errorf("init: %w", err)
	}
	if err := backend.SaveBytes(ctx, be, SealedKeyName, sealed); err != nil {
		return Config{}, fmt.Errorf("init: %w", err)
	}
	body, _ := json.MarshalIndent(cfg, "", "  ")
	// The config is written last: a repository without it is not initialized.
	if err := backend.SaveBytes(ctx, be, configName, body); err != nil {
		return Config{}, fmt.Errorf("init: %w", err)
	}
	return cfg, nil
}

// ErrWrongIndexKey is matched by the error for an index key that does not
// belong to the repository.
var ErrWrongIndexKey = errors.New("wrong index key")

// ErrConfigMissing is matched by the error of LoadConfig and of a session
// start when the repository's config object does not exist: nothing was
// initialized there, or the repository vanished (a backup disk not
// mounted, a directory moved or deleted).
var ErrConfigMissing = errors.New("config missing")

// LoadConfig reads and authenticates the repository config.
func LoadConfig(ctx context.Context, be backend.Backend, key *crypto.IndexKey) (Config, error) {
	body, err := backend.ReadAll(ctx, be, configName)
	if err != nil {
		if errors.Is(err, backend.ErrNotExist) {
			return Config{}, fmt.Errorf("no repository here (%w); run syncd init first", ErrConfigMissing)
		}
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal(body, &cfg); err != nil {
		return Config{}, fmt.Errorf("config: not a syncd repository config: %v", err)
	}
	keyName := "index key"
	if key.Path() != "" {
		keyName = "index key " + key.Path()
	}
	if got := key.Recipient().String(); got != cfg.IndexRecipient {
		return Config{}, fmt.Errorf("%s (public key %s…) is not this repository's index key (%s…): %w",
			keyName, got[:16], prefix(cfg.IndexRecipient, 16), ErrWrongIndexKey)
	}
	if !hmac.Equal([]byte(cfg.mac(key)), []byte(cfg.MAC)) {
		return Config{}, errors.New("config: authentication failed: the config object was modified or belongs to another key")
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func prefix(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return strings.Clone(s)
}

// chunkIDKey returns the chunk-ID key of the repository: the one sealed
// in ChunkIDKey (a rotated repository), or the one derived from key.
func (c Config) chunkIDKey(key *crypto.IndexKey) ([]byte, error) {
	if c.ChunkIDKey == "" {
		return key.ChunkIDKey(c.ChunkIDSource()), nil
	}
	sealed, err := base64.StdEncoding.DecodeString(c.ChunkIDKey)
	if err == nil {
		var k []byte
		if k, err = crypto.Open(sealed, key.Identity()); err == nil && len(k) == 32 {
			return k, nil
		}
	}
	return nil, fmt.Errorf("config: chunk_id_key does not open with the index key: %w", ErrCorrupt)
}
