package tlsid

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	first, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{".": 0o700 | os.ModeDir, KeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode() &^ (os.ModeSetgid | os.ModeSticky); got != want {
			t.Errorf("%s: mode %v, want %v", name, got, want)
		}
	}
	leaf := first.Cert.Leaf
	if leaf == nil || leaf.Subject.CommonName != "syncd" || leaf.NotAfter.Year() != 9999 {
		t.Errorf("certificate: %+v, want CN syncd valid until 9999", leaf)
	}
	if want := NodeIDOf(leaf); first.ID != want {
		t.Errorf("ID %s, want the certificate's %s", first.ID, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("state directory holds %d entries, want node.key and node.crt only", len(entries))
	}

	second, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if second.ID != first.ID || !bytes.Equal(second.Cert.Certificate[0], first.Cert.Certificate[0]) {
		t.Errorf("second load: ID %s, want %s and the same certificate", second.ID, first.ID)
	}

	// A lost certificate is issued again for the same key: the ID stays.
	if err := os.Remove(filepath.Join(dir, CertFile)); err != nil {
		t.Fatal(err)
	}
	third, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if third.ID != first.ID {
		t.Errorf("re-issued certificate: ID %s, want %s", third.ID, first.ID)
	}
}

func TestLoadOrCreateEd25519(t *testing.T) {
	dir := t.TempDir()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	writeFile(t, filepath.Join(dir, KeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	id, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := id.Cert.PrivateKey.(ed25519.PrivateKey); !ok {
		t.Errorf("private key is %T, want the Ed25519 key in the file", id.Cert.PrivateKey)
	}
}

func TestLoadOrCreateRefuses(t *testing.T) {
	good := t.TempDir()
	if _, err := LoadOrCreate(good); err != nil {
		t.Fatal(err)
	}
	key := readFile(t, filepath.Join(good, KeyFile))
	cert := readFile(t, filepath.Join(good, CertFile))
	other := t.TempDir()
	if _, err := LoadOrCreate(other); err != nil {
		t.Fatal(err)
	}
	otherCert := readFile(t, filepath.Join(other, CertFile))
	block, _ := pem.Decode(key)
	truncated := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: block.Bytes[:len(block.Bytes)/2]})

	for _, tt := range []struct {
		name      string
		key, cert []byte // nil: no file
		keyMode   os.FileMode
		file      string // the file the error must name
		want      string
	}{
		{"key mode 0644", key, cert, 0o644, KeyFile, "permissions 0644 are too open"},
		{"key mode 0640", key, cert, 0o640, KeyFile, "permissions 0640 are too open"},
		{"key not PEM", []byte("garbage\n"), cert, 0o600, KeyFile, "damaged"},
		{"key truncated", truncated, cert, 0o600, KeyFile, "damaged"},
		{"cert not PEM", key, []byte("garbage\n"), 0o600, CertFile, "damaged"},
		{"cert truncated", key, cert[:len(cert)/2], 0o600, CertFile, "damaged"},
		{"cert of another key", key, otherCert, 0o600, CertFile, "not for the key"},
		{"cert without key", nil, cert, 0, KeyFile, "missing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.key != nil {
				writeFile(t, filepath.Join(dir, KeyFile), tt.key, tt.keyMode)
			}
			writeFile(t, filepath.Join(dir, CertFile), tt.cert, 0o644)
			_, err := LoadOrCreate(dir)
			if err == nil {
				t.Fatal("LoadOrCreate succeeded, want an error")
			}
			msg := err.Error()
			if !strings.Contains(msg, filepath.Join(dir, tt.file)) || !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q, want one line naming %s and saying %q", msg, tt.file, tt.want)
			}
			// No key material in an error, whole or in part.
			b64 := strings.Split(string(key), "\n")[1]
			if strings.Contains(msg, b64[:16]) {
				t.Errorf("error %q contains key material", msg)
			}
			// A refused identity is left as it was: nothing new is made.
			if tt.key == nil {
				if _, err := os.Stat(filepath.Join(dir, KeyFile)); err == nil {
					t.Errorf("a key was created beside an existing certificate")
				}
			}
		})
	}
}

func writeFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
