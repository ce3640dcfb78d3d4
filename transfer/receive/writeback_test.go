package receive

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/syncd/syncd/transfer/wire"
)

// A temporary file's writeback is started every writebackBytes written
// to it, and for what is left when a file of writebackFloor or more is
// finished; a small file is left to the batch's syncfs.
func TestWritebackStarted(t *testing.T) {
	var kicks int
	defer func(f func(int)) { startWriteback = f }(startWriteback)
	startWriteback = func(int) { kicks++ }

	f, err := os.Create(filepath.Join(t.TempDir(), "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := &action{e: wire.Entry{Size: 3 * writebackBytes}, file: f}
	for range 5 {
		a.wrote(writebackBytes / 2)
	}
	if kicks != 2 {
		t.Fatalf("%d writebacks started after 2.5 × writebackBytes, want 2", kicks)
	}
	a.finished()
	if kicks != 3 {
		t.Fatalf("%d writebacks started once the file is finished, want 3", kicks)
	}
	a.finished()
	if kicks != 3 {
		t.Fatalf("%d writebacks started with nothing left to write, want 3", kicks)
	}

	small := &action{e: wire.Entry{Size: writebackFloor - 1}, file: f}
	small.wrote(writebackFloor - 1)
	small.finished()
	if kicks != 3 {
		t.Fatalf("a file under writebackFloor started its writeback (%d)", kicks)
	}
}
