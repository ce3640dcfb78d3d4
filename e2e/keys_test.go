package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyRecipients: restore key list shows the index and data keys; key
// add makes a second data recipient whose identity alone then restores a
// snapshot written after (and opens the sealed index key); key remove
// takes the first off; removing the last is one line, exit 1, and changes
// nothing.
func TestKeyRecipients(t *testing.T) {
	r := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("before"), 0o644)
	r.snapshot(t, src)

	type key struct {
		Role, Recipient string
		InConfig        bool `json:"in_config"`
	}
	list := func() []key {
		t.Helper()
		var keys []key
		out := ok(t, nil, "restore", append([]string{"key", "list", "--json"}, r.flags()...)...)
		if err := json.Unmarshal([]byte(out), &keys); err != nil {
			t.Fatalf("key list --json: %v\n%s", err, out)
		}
		return keys
	}
	if keys := list(); len(keys) != 2 || keys[0].Role != "index" || keys[1].Recipient != r.recipient {
		t.Fatalf("key list: %+v", keys)
	}
	second := filepath.Join(t.TempDir(), "second.key")
	rcpt2 := strings.TrimSpace(ok(t, nil, "syncd", "keygen", second))
	ok(t, nil, "restore", append([]string{"key", "add", "--data-recipient", rcpt2}, r.flags()...)...)
	if keys := list(); len(keys) != 3 || keys[2].Recipient != rcpt2 || !keys[2].InConfig {
		t.Fatalf("key list after add: %+v", keys)
	}
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("after"), 0o644)
	r.snapshot(t, src)
	// the second identity alone (no index key: the sealed one) restores it
	target := filepath.Join(t.TempDir(), "r")
	ok(t, nil, "restore", "latest", "--repo", r.url, "--identity", second, "--target", target)
	if b, _ := os.ReadFile(filepath.Join(target, src, "a.txt")); string(b) != "after" {
		t.Errorf("restored with the added identity: %q", b)
	}

	ok(t, nil, "restore", append([]string{"key", "remove", "--data-recipient", r.recipient}, r.flags()...)...)
	if keys := list(); len(keys) != 2 || keys[1].Recipient != rcpt2 {
		t.Fatalf("key list after remove: %+v", keys)
	}
	before, _ := os.ReadFile(filepath.Join(r.url, "config"))
	res := run(t, nil, "restore", append([]string{"key", "remove", "--data-recipient", rcpt2}, r.flags()...)...)
	oneLine(t, "removing the last data recipient", res, 1, "it is the last data recipient", "nothing was changed")
	if after, _ := os.ReadFile(filepath.Join(r.url, "config")); string(after) != string(before) {
		t.Error("the refused removal changed the config")
	}
	res = run(t, nil, "restore", append([]string{"key", "add", "--data-recipient", "age1bogus"}, r.flags()...)...)
	oneLine(t, "adding a recipient that is no key", res, 1, "age1bogus")
	res = run(t, nil, "restore", append([]string{"key", "add"}, r.flags()...)...)
	oneLine(t, "key add without a recipient", res, 2, "--data-recipient")
	ok(t, nil, "restore", append([]string{"verify"}, r.flags()...)...)
}
