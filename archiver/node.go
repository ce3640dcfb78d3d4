package archiver

import (
	"io/fs"
	"syscall"
	"time"

	"github.com/syncd/syncd/chunkstore"
)

// nodeFromInfo fills a node's metadata from an lstat result.
func nodeFromInfo(name string, fi fs.FileInfo) chunkstore.Node {
	n := chunkstore.Node{Mode: chunkstore.ModeBits(fi.Mode()), ModTime: fi.ModTime()}
	n.SetName(name)
	switch {
	case fi.Mode().IsRegular():
		n.Type = chunkstore.NodeFile
		n.Size = uint64(fi.Size())
	case fi.IsDir():
		n.Type = chunkstore.NodeDir
	case fi.Mode()&fs.ModeSymlink != 0:
		n.Type = chunkstore.NodeSymlink
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		n.UID, n.GID = st.Uid, st.Gid
		n.Inode, n.Device, n.Links = st.Ino, uint64(st.Dev), uint64(st.Nlink)
		n.ChTime = time.Unix(st.Ctim.Sec, st.Ctim.Nsec)
		n.ModTime = time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
	}
	if n.Type == chunkstore.NodeDir {
		n.Links = 0 // a directory's link count is its subdirectory count: noise
	}
	return n
}

// unchanged reports whether the file described by cur may reuse the
// content of old without being read: same type, size, mtime, ctime, inode.
func unchanged(old *chunkstore.Node, cur *chunkstore.Node) bool {
	return old != nil && old.Type == chunkstore.NodeFile && cur.Type == chunkstore.NodeFile &&
		old.Size == cur.Size && old.ModTime.Equal(cur.ModTime) && old.ChTime.Equal(cur.ChTime) &&
		old.Inode == cur.Inode && (old.Size == 0 || len(old.Content) > 0)
}
