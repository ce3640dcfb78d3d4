package chunkstore

import (
	"context"
	"encoding/json"
	"io"
	"strings"

	"github.com/syncd/syncd/chunkstore/backend"
)

// metaDirs are the prefixes of the metadata objects that an index-key
// rotation moves to a new generation (Config.MetaPrefix); data/, locks/
// and keys/ stay where they are.
var metaDirs = []string{"index/", "tree/", "snapshots/", "drills/"}

// isMeta reports whether name (or a listing prefix) is a metadata object
// of a generation: under metaDirs, or the sealed index key.
func isMeta(name string) bool {
	for _, d := range metaDirs {
		if strings.HasPrefix(name, d) {
			return true
		}
	}
	return name == SealedKeyName
}

// genBackend is a backend whose metadata objects live under prefix: the
// rest of the package names them as always ("tree/<id>").
type genBackend struct {
	backend.Backend
	prefix string
}

func (g genBackend) name(n string) string {
	if isMeta(n) {
		return g.prefix + n
	}
	return n
}

func (g genBackend) Save(ctx context.Context, name string, r io.ReaderAt, size int64) error {
	return g.Backend.Save(ctx, g.name(name), r, size)
}

func (g genBackend) Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	return g.Backend.Open(ctx, g.name(name), off, n)
}

func (g genBackend) Stat(ctx context.Context, name string) (backend.Info, error) {
	fi, err := g.Backend.Stat(ctx, g.name(name))
	fi.Name = name
	return fi, err
}

func (g genBackend) Remove(ctx context.Context, name string) error {
	return g.Backend.Remove(ctx, g.name(name))
}

func (g genBackend) List(ctx context.Context, prefix string, fn func(backend.Info) error) error {
	if !isMeta(prefix) {
		return g.Backend.List(ctx, prefix, fn)
	}
	return g.Backend.List(ctx, g.prefix+prefix, func(fi backend.Info) error {
		fi.Name = strings.TrimPrefix(fi.Name, g.prefix)
		return fn(fi)
	})
}

// generation returns be as the repository of the plain config body sees
// it: under its metadata prefix, if any. The prefix is not authenticated
// here; Open checks the config's MAC before anything is trusted.
func generation(be backend.Backend, prefix string) backend.Backend {
	if prefix == "" {
		return be
	}
	return genBackend{Backend: be, prefix: prefix}
}

// plainPrefix reads the metadata prefix of the config in be without
// authenticating it (for UnsealIndexKey, which has no index key yet).
func plainPrefix(ctx context.Context, be backend.Backend) string {
	body, err := backend.ReadAll(ctx, be, configName)
	if err != nil {
		return ""
	}
	var c struct {
		MetaPrefix string `json:"meta_prefix"`
	}
	if json.Unmarshal(body, &c) != nil || strings.Contains(c.MetaPrefix, "..") {
		return ""
	}
	return c.MetaPrefix
}
