package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// allowed lists, for each of our packages, the packages of ours it may
// import (directly or not): DESIGN.md §2, lower layers never import higher
// ones. Packages not listed (cmd/…, e2e, bench) may import anything.
var allowed = map[string][]string{
	"crypto":                 {},
	"chunkstore/backend":     {},
	"chunkstore/local":       {"chunkstore/backend"},
	"chunkstore/s3":          {"chunkstore/backend"},
	"chunkstore/backendtest": {"chunkstore/backend"},
	"chunkstore":             {"chunkstore/backend", "crypto", "internal/freelist"},
	"archiver":               {"chunkstore", "chunkstore/backend", "crypto", "state", "internal/binread", "internal/freelist"},
	"restorer":               {"chunkstore", "chunkstore/backend", "crypto", "internal/atdir", "internal/ownname", "internal/freelist"},
	"checker":                {"chunkstore", "chunkstore/backend", "crypto", "internal/freelist"},
	"copier":                 {"chunkstore", "chunkstore/backend", "crypto", "internal/freelist"},
	"drill":                  {"chunkstore", "chunkstore/backend", "crypto", "restorer", "internal/atdir", "internal/ownname", "internal/freelist"},
	"internal/miniotest":     {"internal/freeport"},
	"internal/freeport":      {},
	"internal/repotest":      {"chunkstore", "chunkstore/backend", "chunkstore/local", "crypto", "internal/freelist"},
	"config":                 {"internal/span"},
	"alert":                  {"internal/clock"},
	"internal/clock":         {},
	"internal/version":       {},
	"internal/span":          {},
	"watcher":                {"internal/health", "internal/clock", "internal/ownname"},
	"daemon": {"archiver", "chunkstore", "chunkstore/backend", "config", "copier", "crypto", "indexer", "retention", "state",
		"transfer", "transfer/receive", "transfer/tlsid", "transfer/wire", "watcher", "internal/binread", "internal/health", "internal/version", "alert", "internal/clock", "internal/span", "internal/ownname", "internal/atdir", "localfolder", "internal/bell", "internal/freelist"},
	"transfer":            {"chunkstore", "chunkstore/backend", "config", "crypto", "state", "transfer/receive", "transfer/tlsid", "transfer/wire", "internal/binread", "internal/health", "internal/span", "internal/ownname", "internal/atdir", "internal/clock", "localfolder", "internal/bell", "internal/freelist"},
	"transfer/receive":    {"chunkstore", "chunkstore/backend", "config", "crypto", "state", "transfer/wire", "internal/binread", "internal/health", "internal/span", "internal/ownname", "internal/atdir", "internal/clock", "localfolder", "internal/bell", "internal/freelist"},
	"transfer/wire":       {"chunkstore", "chunkstore/backend", "crypto", "state", "internal/binread", "internal/ownname", "internal/freelist"},
	"internal/binread":    {},
	"internal/health":     {},
	"transfer/tlsid":      {},
	"internal/faultproxy": {},
	"internal/ownname":    {},
	"internal/atdir":      {},
	"indexer":             {"state", "chunkstore", "chunkstore/backend", "crypto", "internal/binread", "internal/health", "internal/ownname", "localfolder", "internal/clock", "internal/bell", "internal/freelist"},
	"state":               {"chunkstore", "chunkstore/backend", "crypto", "internal/binread", "internal/freelist"},
	"localfolder":         {"state", "chunkstore", "chunkstore/backend", "crypto", "internal/binread", "internal/clock", "internal/bell", "internal/freelist"},
	"internal/bell":       {},
	"internal/freelist":   {},
}

func TestImportLayers(t *testing.T) {
	const mod = "github.com/syncd/syncd/"
	out, err := exec.Command("go", "list", "-deps=false", "-json", "github.com/syncd/syncd/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p.ImportPath, mod)
		ok, listed := allowed[name]
		if !listed {
			continue
		}
		seen++
		for _, dep := range p.Deps {
			d, ours := strings.CutPrefix(dep, mod)
			if !ours {
				continue
			}
			permitted := false
			for _, a := range ok {
				permitted = permitted || a == d
			}
			if !permitted {
				t.Errorf("%s imports %s (directly or through another package): not allowed by the layering", name, d)
			}
		}
	}
	if seen != len(allowed) {
		t.Errorf("found %d of the %d layered packages; update the table", seen, len(allowed))
	}
}
