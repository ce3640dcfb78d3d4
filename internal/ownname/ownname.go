// Package ownname is the one rule for the names syncd keeps for itself
// inside a folder: every name that starts with ".syncd-" is syncd's (the
// folder marker, the receiver's temporary files, a drill's or a restore's
// scratch), never content. The indexer does not index such a name, the
// watcher ignores it, a peer may not send one, and a folder holding
// nothing else is empty.
package ownname

import (
	"crypto/rand"
	"encoding/hex"
	"path"
	"strconv"
	"strings"
)

// Prefix starts every name syncd keeps for itself.
const Prefix = ".syncd-"

// Marker is the name of the folder marker (see daemon's folder guard).
const Marker = Prefix + "folder"

// tempPrefix starts the names of the receiver's temporary files.
const tempPrefix = Prefix + "tmp-"

// restorePrefix starts the names of the restorer's temporary files.
const restorePrefix = Prefix + "restore-"

// Is reports whether the base name name is syncd's own.
func Is(name string) bool { return strings.HasPrefix(name, Prefix) }

// IsTemp reports whether the base name name is one of the receiver's
// temporary files (a crash may leave one behind).
func IsTemp(name string) bool { return strings.HasPrefix(name, tempPrefix) }

// Temp returns a new, random name for a temporary file of the receiver.
func Temp() string {
	var b [6]byte
	rand.Read(b[:])
	return tempPrefix + hex.EncodeToString(b[:])
}

// TempBeside returns a new, random name for a temporary file of the
// receiver in the directory of rel, a slash-separated path.
func TempBeside(rel string) string { return path.Join(path.Dir(rel), Temp()) }

// RestoreTemp returns the name of the restorer's n-th temporary file, in
// the directory of rel, a slash-separated path. It is syncd's own name
// (see [Is]) but not a receiver's temporary one (see [IsTemp]).
func RestoreTemp(rel string, n int) string {
	return path.Join(path.Dir(rel), restorePrefix+strconv.Itoa(n))
}
