package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pad returns minimal followed by comment lines, size bytes in all: a
// valid configuration of any size.
func pad(size int) []byte {
	line := "# " + strings.Repeat("x", 77) + "\n"
	b := []byte(minimal)
	for len(b)+len(line) <= size {
		b = append(b, line...)
	}
	for len(b) < size-1 {
		b = append(b, ' ')
	}
	return append(b, '\n')[:size]
}

func TestLoadRefusesFileOverLimit(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pad(size), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := write("ok.yaml", MaxFileSize)
	if _, err := Load(ok); err != nil {
		t.Errorf("Load of exactly %d bytes: %v", MaxFileSize, err)
	}
	big := write("big.yaml", MaxFileSize+1)
	want := "config " + big + ": larger than the limit of 1 MiB; refused"
	for name, load := range map[string]func(string) (*Config, error){"Load": Load, "LoadNode": LoadNode} {
		_, err := load(big)
		if err == nil || err.Error() != want {
			t.Errorf("%s of %d bytes: got %v, want %q", name, MaxFileSize+1, err, want)
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%s: %v is not a *config.Error", name, err)
		}
	}
	if _, err := Parse(pad(MaxFileSize+1), "big.yaml"); err == nil || err.Error() != "config big.yaml: larger than the limit of 1 MiB; refused" {
		t.Errorf("Parse of %d bytes: got %v", MaxFileSize+1, err)
	}
}
