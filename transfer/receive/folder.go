package receive

import (
	"os"
	"sync"

	"github.com/syncd/syncd/chunkstore"
	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/internal/clock"
	"github.com/syncd/syncd/internal/health"
	"github.com/syncd/syncd/localfolder"
)

// Folder is a local folder as its receivers (one per peer) need it, and
// what they share: the paths being built, the chunks found in local files.
// Its fields are set before its first receiver runs and not changed after.
type Folder struct {
	// Config is the folder's configuration: its ID, path and mode.
	Config config.Folder
	// Chunking names the chunks of the folder's files: a block from the
	// peer is checked against its ID with it.
	Chunking chunkstore.Chunking
	// Ignore reports whether the folder ignores a path; nil: nothing
	// ignored.
	Ignore func(rel string, isDir bool) bool

	// Local is the node's own copy of the folder, shared with its
	// indexer: the index the receivers record into, the lock under which
	// a batch is committed, and the record of what they wrote. Required.
	Local *localfolder.Folder

	// Health holds the folder's lasting conditions: a Failed one stops
	// every batch ([ErrFolderFailed]), and while the disk is full
	// ([CondDiskFull]) each file's space is reserved before its blocks
	// are asked for. Required.
	Health *health.Conditions

	// Root returns the folder's open directory, through which every file
	// operation of the receivers goes (see fsops.go). Required.
	Root func() *os.Root

	// Clock is the time of the rebuilds of the local chunk sources.
	// Required.
	Clock clock.Clock

	claims claims // the paths the receivers are building (see claims.go)

	// src finds chunks in local files for every receiver of the folder: a
	// file one of them wrote is a source for the others at once, and the
	// index is walked for one map, not one per peer.
	srcOnce sync.Once
	src     *sources
}

func (f *Folder) ignored(rel string, isDir bool) bool {
	return f.Ignore != nil && f.Ignore(rel, isDir)
}

// sources returns the folder's chunk sources, made on first use.
func (f *Folder) sources() *sources {
	f.srcOnce.Do(func() { f.src = newSources(f) })
	return f.src
}

// Claimed returns how many paths the folder's receivers are building
// now (see claims.go).
func (f *Folder) Claimed() int { return f.claims.held() }

// TrustedBytes returns how many bytes of chunks the folder's receivers
// took from local files without hashing them, the files' stat vouching
// for them (see trusted.go).
func (f *Folder) TrustedBytes() int64 { return f.sources().trusted.Load() }
