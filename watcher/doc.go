// Package watcher turns file-system events under one folder into batches of
// hints: paths that may have changed, or "rescan the whole folder".
//
// Events are hints (DESIGN.md §4): the consumer scans what a [Batch] names
// against its index, so a lost event costs a rescan, never data. The
// watcher therefore reports too much rather than too little:
//
//   - Linux inotify watches are not recursive: a [Watcher] keeps one watch
//     per directory (ignored and temporary directories excepted; symlinks
//     are not followed) and adds or drops them as directories come and go.
//     A directory that appears is walked and everything in it reported,
//     since files land in it before its watch exists. A renamed directory
//     is reported under both names; its watches are dropped and re-added
//     under the new name.
//   - Events on a path are coalesced: it is reported once it has been
//     quiet for Options.Debounce, and, for a regular file, once its size
//     and mtime have held still for Options.Settle (a file still being
//     written is waited for), but never later than Options.MaxHold. All
//     paths due together go in one Batch.
//   - An inotify queue overflow, the inotify watch limit
//     (fs.inotify.max_user_watches; one warning saying how to raise it), a
//     removed root, and a timer (Options.Rescan, default 1h) each turn into
//     a Rescan batch. While the watch limit leaves directories without a
//     watch, those directories (only) are polled every Options.Poll
//     (default 10s) and their changes reported as ordinary paths; each poll
//     retries their watches, and Options.Health holds the condition
//     "watch-limit" (degraded) until every directory is watched. Before an
//     overflow's or the timer's Rescan is sent, the watcher walks the tree
//     and re-adds every watch, so the consumer's rescan starts with the
//     tree fully watched again. Such walks are spaced so that they take at
//     most a tenth of the time.
//   - Our own temporary files (Options.IsTemp) are never reported: a
//     transfer's ".syncd-…" file shows up as the Create of its final name
//     when it is renamed into place. With Options.Arrivals, that Create is
//     dropped too when the receiver announced the rename and the name
//     holds the inode it announced; every other event of the path (a local
//     write after the rename, another file moved there) is reported. The
//     announcements of a directory are forgotten when its watch is added,
//     and all of them on an overflow or a lost root, as their events may
//     never come.
//
// A Watcher runs as a service, [Watcher.Run], until its context ends.
package watcher
