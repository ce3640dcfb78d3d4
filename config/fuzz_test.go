package config

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse feeds Parse arbitrary text: it must return a config or a
// one-line *Error, never panic.
func FuzzParse(f *testing.F) {
	if sample, err := os.ReadFile("../deploy/syncd.yaml"); err == nil {
		f.Add(string(sample))
	}
	f.Add(minimal)
	f.Add(minimal + "folders:\n  - {id: www, path: /srv/www, ignore: ['[']}\n")
	f.Add(minimal + "repository: {url: s3://b, index_key: /k, schedule: 'TZ=UTC 0 * * * *'}\n")
	f.Add("a: &a [*a]\n")
	f.Add("node: &n {name: x}\npeers: [*n, *n]\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse([]byte(text), "f.yaml")
		if err != nil {
			if c != nil {
				t.Errorf("Parse returned a config and an error: %v", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
			return
		}
		if c.Node.Name == "" || c.Node.StateDir == "" {
			t.Errorf("Parse accepted a config without node.name or node.state_dir: %q", text)
		}
	})
}
