package daemon

import "github.com/syncd/syncd/chunkstore"

// snapshotRepoKey holds the ID of the repository the folders' snapshot
// sequences ("snapshot-seq/<folder>") refer to.
const snapshotRepoKey = "snapshot-repo"

// fullPass reports whether this snapshot must look at every indexed file,
// not only those changed since the last snapshot: when the last snapshot
// went to another repository (repository.url changed: the new one holds
// none of the blobs), or when the session found packs missing or index
// objects unreadable (the blobs they held must be stored again, and only a
// pass over every file finds the files that need them). The pass reads
// from disk only what the repository lacks.
func (d *Daemon) fullPass(sess *chunkstore.Session) bool {
	if len(sess.Dropped) > 0 || len(sess.BadIndex) > 0 {
		return true
	}
	v, ok, err := d.db.GetMeta(snapshotRepoKey)
	return err != nil || !ok || string(v) != d.repo.Config().ID
}

// setSnapshotRepo records the repository the snapshot sequences now
// refer to.
func (d *Daemon) setSnapshotRepo() {
	if err := d.db.PutMeta(snapshotRepoKey, []byte(d.repo.Config().ID)); err != nil {
		d.log.Error("cannot record the snapshot's repository", "err", err)
	}
}
