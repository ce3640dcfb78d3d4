package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFormatByHand follows docs/FORMAT.md "Getting a file back by hand"
// with the real age, zstd and dd CLIs, and nothing of ours.
func TestFormatByHand(t *testing.T) {
	age, zstd := tool(t, "age"), tool(t, "zstd")
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "site")
	makeAwkward(t, src)
	id := r.snapshot(t, src)
	snapFile := ""
	for _, p := range objects(t, r, "snapshots") {
		if strings.HasPrefix(filepath.Base(p), id) {
			snapFile = p
		}
	}
	sh := func(script string, env ...string) []byte {
		t.Helper()
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		cmd.Env = append(os.Environ(), append(env, "AGE="+age, "ZSTD="+zstd)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v: %s", script, err, stderr.String())
		}
		return out
	}
	// 1. the snapshot
	var snap struct{ Tree string }
	mustJSON(t, sh(`"$AGE" -d -i "$KEY" "$OBJ" | "$ZSTD" -d`, "KEY="+r.indexKey, "OBJ="+snapFile), &snap)

	// 2. all index objects
	type blob struct {
		ID          string
		Offset      int
		Length      int
		Compression string
	}
	type pack struct {
		ID    string
		Type  string
		Blobs []blob
	}
	where := map[string]struct {
		pack pack
		blob blob
	}{}
	for _, obj := range objects(t, r, "index") {
		var idx struct{ Packs []pack }
		mustJSON(t, sh(`"$AGE" -d -i "$KEY" "$OBJ" | "$ZSTD" -d`, "KEY="+r.indexKey, "OBJ="+obj), &idx)
		for _, p := range idx.Packs {
			for _, b := range p.Blobs {
				where[b.ID] = struct {
					pack pack
					blob blob
				}{p, b}
			}
		}
	}
	// 3. a blob out of its pack
	tmp := t.TempDir()
	extract := func(id, key string) []byte {
		w, ok := where[id]
		if !ok {
			t.Fatalf("blob %s in no index", id)
		}
		obj := filepath.Join(r.url, w.pack.Type, w.pack.ID)
		script := `"$AGE" -d -i "$KEY" -o "$TMP/pack.bin" "$OBJ"; dd if="$TMP/pack.bin" iflag=skip_bytes,count_bytes bs=64K skip=$OFF count=$LEN status=none`
		if w.blob.Compression == "zstd" {
			script += ` | "$ZSTD" -d`
		}
		return sh(script, "KEY="+key, "OBJ="+obj, "TMP="+tmp, "OFF="+strconv.Itoa(w.blob.Offset), "LEN="+strconv.Itoa(w.blob.Length))
	}
	type node struct {
		Name    string
		Type    string
		Subtree string
		Content []string
	}
	tree := snap.Tree
	for _, name := range append(splitAll(src), "dir", "big.bin") {
		var tr struct{ Nodes []node }
		mustJSON(t, extract(tree, r.indexKey), &tr)
		found := false
		for _, n := range tr.Nodes {
			if n.Name != name {
				continue
			}
			found = true
			if n.Type == "dir" {
				tree = n.Subtree
				continue
			}
			// 4. the file's content, blob by blob, with the data identity
			var got []byte
			for _, b := range n.Content {
				got = append(got, extract(b, r.dataKey)...)
			}
			want, _ := os.ReadFile(filepath.Join(src, "dir", "big.bin"))
			if !bytes.Equal(got, want) {
				t.Fatalf("file rebuilt by hand: %d bytes, differs from the %d of the source", len(got), len(want))
			}
			// The index key does not open a content pack.
			w := where[n.Content[0]]
			cmd := exec.Command(age, "-d", "-i", r.indexKey, filepath.Join(r.url, "data", w.pack.ID))
			if out, err := cmd.CombinedOutput(); err == nil {
				t.Errorf("the index key opened a content pack")
			} else if !strings.Contains(string(out), "no identity matched") {
				t.Errorf("age with the index key on a content pack: %s", out)
			}
			return
		}
		if !found {
			t.Fatalf("no %q in tree %s", name, tree)
		}
	}
	t.Fatal("did not reach the file")
}

func splitAll(p string) []string {
	return strings.Split(strings.TrimPrefix(p, "/"), "/")
}

func mustJSON(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
}
