// Package cli holds what cmd/syncd and cmd/restore share: opening a
// repository from flags and environment, exit codes, progress output.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/chunkstore/backend"
	"github.com/syncd/syncd/chunkstore/local"
	"github.com/syncd/syncd/chunkstore/s3"
	"github.com/syncd/syncd/crypto"
)

// RepoFlags are the flags that locate a repository and its keys. Each
// falls back to an environment variable.
type RepoFlags struct {
	Repo     string // SYNCD_REPO
	IndexKey string // SYNCD_INDEX_KEY
	Identity string // SYNCD_IDENTITY

}

// KeyError names the key file in an error about a key that does not fit.
func (f *RepoFlags) KeyError(err error) error {
	if errors.Is(err, crypto.ErrNoKey) && f.Identity != "" {
		return fmt.Errorf("data identity %s: %w", f.Identity, err)
	}
	return err
}

// Register adds --repo and --index-key (and --identity when withIdentity)
// to cmd.
func (f *RepoFlags) Register(cmd *cobra.Command, withIdentity bool) {
	cmd.Flags().StringVarP(&f.Repo, "repo", "r", os.Getenv("SYNCD_REPO"), "repository: a directory, s3://BUCKET[/PREFIX] or s3:BUCKET[/PREFIX] (env SYNCD_REPO)")
	cmd.Flags().StringVar(&f.IndexKey, "index-key", os.Getenv("SYNCD_INDEX_KEY"), "index key file (env SYNCD_INDEX_KEY)")
	if withIdentity {
		cmd.Flags().StringVar(&f.Identity, "identity", os.Getenv("SYNCD_IDENTITY"), "data identity file, to read file contents; without --index-key it opens the index key sealed in the repository (env SYNCD_IDENTITY)")
	}
}

// Backend opens the storage named by url; create makes it when missing.
// An s3:// backend's uploads ask for the options the environment sets
// (UploadFromEnv).
func Backend(ctx context.Context, url string, create bool) (backend.Backend, error) {
	return BackendWith(ctx, url, create, s3.UploadOptions{})
}

// BackendWith is Backend with the upload options of a configuration,
// which win over the environment's, key by key.
func BackendWith(ctx context.Context, url string, create bool, up s3.UploadOptions) (backend.Backend, error) {
	url, err := repoURL(url)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(url, "s3://") {
		return openS3(ctx, s3.Config{URL: url, Upload: up}, create)
	}
	return openLocal(url, create)
}

// repoURL checks that url is given and turns restic's spelling
// s3:BUCKET[/PREFIX] into s3://BUCKET[/PREFIX].
func repoURL(url string) (string, error) {
	if url == "" {
		return "", Usage("no repository given: use --repo or SYNCD_REPO")
	}
	if rest, ok := strings.CutPrefix(url, "s3:"); ok && !strings.HasPrefix(rest, "//") {
		// restic's spelling, s3:BUCKET/PREFIX; never a directory "s3:BUCKET"
		if rest == "" || strings.HasPrefix(rest, "/") || strings.Contains(rest, "://") {
			return "", Usage("repository %s: want s3://BUCKET[/PREFIX] or s3:BUCKET[/PREFIX]", url)
		}
		url = "s3://" + rest
	}
	return url, nil
}

// openLocal opens the repository directory at url.
func openLocal(url string, create bool) (backend.Backend, error) {
	if i := strings.Index(url, "://"); i > 0 {
		return nil, fmt.Errorf("repository %s: unknown scheme %q (want a directory or s3://)", url, url[:i])
	}
	if create {
		return local.Create(url)
	}
	be, err := local.Open(url)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("repository %s: directory missing: not mounted or deleted? (syncd init makes a new, empty one)", url)
	}
	return be, err
}

// Open opens the repository for reading, with its index key (or, given
// only the data identity, with the index key sealed in the repository),
// and the data identity when one is given, and loads the index.
// Unreadable index objects are logged by the caller through the returned
// slice.
func (f *RepoFlags) Open(ctx context.Context) (*chunkstore.Repository, []*chunkstore.IndexError, error) {
	repo, err := f.OpenNoIndex(ctx)
	if err != nil {
		return nil, nil, err
	}
	bad, err := repo.LoadIndex(ctx)
	if err != nil {
		repo.Close()
		return nil, nil, fmt.Errorf("repository %s: %w", f.Repo, err)
	}
	return repo, bad, nil
}

// OpenNoIndex is Open without loading the index: for a command that reads
// no index, or begins a write session (which loads it under the lock).
func (f *RepoFlags) OpenNoIndex(ctx context.Context) (*chunkstore.Repository, error) {
	if f.IndexKey == "" && f.Identity == "" {
		return nil, Usage("no index key given: use --index-key or SYNCD_INDEX_KEY")
	}
	var key *crypto.IndexKey
	var err error
	if f.IndexKey != "" {
		if key, err = crypto.LoadIndexKey(f.IndexKey); err != nil {
			return nil, err
		}
	}
	var ids []age.Identity
	if f.Identity != "" {
		if ids, err = crypto.LoadIdentities(f.Identity); err != nil {
			return nil, err
		}
	}
	be, err := Backend(ctx, f.Repo, false)
	if err != nil {
		return nil, err
	}
	if key == nil {
		key, err = chunkstore.UnsealIndexKey(ctx, be, ids)
		if errors.Is(err, chunkstore.ErrNoSealedKey) {
			err = errors.New("no index key given and the repository holds no sealed index key: use --index-key")
		}
		if err != nil {
			be.Close()
			return nil, fmt.Errorf("repository %s: %w", f.Repo, f.KeyError(err))
		}
	}
	repo, err := chunkstore.Open(ctx, be, key)
	if err != nil {
		be.Close()
		return nil, fmt.Errorf("repository %s: %w", f.Repo, err)
	}
	if ids != nil {
		repo.SetDataIdentities(ids)
	}
	return repo, nil
}

// BeginWrite opens the repository and begins a shared write session
// (chunkstore.Repository.BeginWrite) for program, waiting up to wait for a
// running prune, and reporting waits and stale locks on stderr. Closing
// the session does not close the repository.
func (f *RepoFlags) BeginWrite(ctx context.Context, program string, wait time.Duration, noIndex bool) (*chunkstore.Repository, *chunkstore.Session, error) {
	repo, err := f.OpenNoIndex(ctx)
	if err != nil {
		return nil, nil, err
	}
	sess, err := repo.BeginWrite(ctx, chunkstore.WriteOptions{NoIndex: noIndex,
		LockOptions: LockLogger(os.Stderr, chunkstore.LockOptions{Program: program, Wait: wait})})
	if err != nil {
		repo.Close()
		return nil, nil, fmt.Errorf("repository %s: %w", f.Repo, err)
	}
	WarnSealedKey(sess)
	return repo, sess, nil
}

// WarnSealedKey prints on stderr why the session could not write the
// sealed index key, if it could not.
func WarnSealedKey(sess *chunkstore.Session) {
	if sess.SealedKeyErr != nil {
		fmt.Fprintf(os.Stderr, "warning: %v; restoring with the data identity alone will need --index-key\n", sess.SealedKeyErr)
	}
}
