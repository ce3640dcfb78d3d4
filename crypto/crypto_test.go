package crypto_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/zeebo/blake3"

	"github.com/syncd/syncd/crypto"
)

func newIdentity(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// writeKeyFile writes body to a new file in a temporary directory with
// mode perm (set explicitly, so the umask does not matter).
func writeKeyFile(t *testing.T, body string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(path, []byte(body), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGenerateIdentityFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.key")
	before := time.Now().UTC().Truncate(time.Second)
	id, err := crypto.GenerateIdentityFile(path)
	if err != nil {
		t.Fatalf("GenerateIdentityFile: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode = %04o, want 0600", got)
	}

	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The age-keygen format: two comment lines, then the secret key.
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if len(lines) != 3 || !strings.HasSuffix(string(body), "\n") {
		t.Fatalf("key file has %d lines (trailing newline %v), want 3 newline-terminated lines:\n%s",
			len(lines), strings.HasSuffix(string(body), "\n"), body)
	}
	created, ok := strings.CutPrefix(lines[0], "# created: ")
	if !ok {
		t.Errorf("line 1 = %q, want \"# created: <RFC 3339 time>\"", lines[0])
	} else if ct, err := time.Parse(time.RFC3339, created); err != nil {
		t.Errorf("created time %q: %v", created, err)
	} else if ct.Before(before) || ct.After(time.Now().Add(time.Second)) {
		t.Errorf("created time %v, want about %v", ct, before)
	}
	if got, want := lines[1], "# public key: "+id.Recipient().String(); got != want {
		t.Errorf("line 2 = %q, want %q", got, want)
	}
	if got, want := lines[2], id.String(); got != want {
		t.Errorf("line 3 = %q, want the secret key %q", got, want)
	}
	if !strings.HasPrefix(lines[2], "AGE-SECRET-KEY-1") {
		t.Errorf("line 3 = %q, want an X25519 secret key (AGE-SECRET-KEY-1…)", lines[2])
	}
	// age itself must read it back as the same identity.
	ids, err := age.ParseIdentities(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("age.ParseIdentities: %v", err)
	}
	if len(ids) != 1 {
		t.Fatalf("age.ParseIdentities found %d identities, want 1", len(ids))
	}
	if x, ok := ids[0].(*age.X25519Identity); !ok || x.String() != id.String() {
		t.Errorf("parsed identity %T does not equal the returned one", ids[0])
	}

	key, err := crypto.LoadIndexKey(path)
	if err != nil {
		t.Fatalf("LoadIndexKey of a generated file: %v", err)
	}
	if got, want := key.Recipient().String(), id.Recipient().String(); got != want {
		t.Errorf("loaded recipient = %s, want %s", got, want)
	}
	if got := key.Path(); got != path {
		t.Errorf("Path() = %q, want %q", got, path)
	}
}

func TestGenerateIdentityFileRefusesToOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.key")
	if _, err := crypto.GenerateIdentityFile(path); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crypto.GenerateIdentityFile(path); err == nil {
		t.Fatal("second GenerateIdentityFile on the same path succeeded, want an error")
	} else if !errors.Is(err, os.ErrExist) {
		t.Errorf("error = %v, want one matching os.ErrExist", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("key file changed after a refused overwrite:\nbefore %q\nafter  %q", before, after)
	}
}

func TestLoadIndexKeyRefuses(t *testing.T) {
	x1, x2 := newIdentity(t), newIdentity(t)
	hybrid, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		body string
		perm os.FileMode
		want []string // substrings of the error; "PATH" stands for the file
	}{
		{"world readable", x1.String() + "\n", 0o644, []string{"chmod 600 PATH", "mode 0644", "PATH"}},
		{"group readable", x1.String() + "\n", 0o640, []string{"chmod 600 PATH"}},
		{"group writable", x1.String() + "\n", 0o620, []string{"chmod 600 PATH"}},
		{"two identities", x1.String() + "\n" + x2.String() + "\n", 0o600, []string{"PATH", "2 identities"}},
		{"hybrid identity", hybrid.String() + "\n", 0o600, []string{"PATH", "not an X25519 identity"}},
		{"garbage", "this is not a key\n", 0o600, []string{"PATH", "not an age identity file"}},
		{"empty", "", 0o600, []string{"PATH"}},
		{"public key only", x1.Recipient().String() + "\n", 0o600, []string{"PATH"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeKeyFile(t, tt.body, tt.perm)
			key, err := crypto.LoadIndexKey(path)
			if err == nil {
				t.Fatalf("LoadIndexKey succeeded (recipient %s), want an error", key.Recipient())
			}
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, "PATH", path)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			// Whatever went wrong, the secret must not be echoed back.
			for _, secret := range []string{x1.String(), x2.String(), hybrid.String()} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a secret key", err)
				}
			}
		})
	}
}

func TestLoadIndexKeyMissingAndDirectory(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such.key")
	_, err := crypto.LoadIndexKey(missing)
	if err == nil {
		t.Fatal("LoadIndexKey of a missing file succeeded")
	}
	if !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("error %q, want it to name %s and say it does not exist", err, missing)
	}

	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err = crypto.LoadIndexKey(dir)
	if err == nil {
		t.Fatal("LoadIndexKey of a directory succeeded")
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "directory") {
		t.Errorf("error %q, want it to name %s and say it is a directory", err, dir)
	}
}

func TestLoadIdentities(t *testing.T) {
	x1, x2 := newIdentity(t), newIdentity(t)
	path := writeKeyFile(t, "# two keys\n"+x1.String()+"\n\n"+x2.String()+"\n", 0o600)
	ids, err := crypto.LoadIdentities(path)
	if err != nil {
		t.Fatalf("LoadIdentities: %v", err)
	}
	if len(ids) != 2 {
		t.Fatalf("LoadIdentities returned %d identities, want 2", len(ids))
	}
	// Each loaded identity opens what is sealed to its recipient.
	for i, r := range []age.Recipient{x1.Recipient(), x2.Recipient()} {
		sealed, err := crypto.Seal(nil, []byte("hello"), r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := crypto.Open(sealed, ids[i]); err != nil {
			t.Errorf("identity %d does not open a file sealed to its recipient: %v", i, err)
		}
	}

	open := writeKeyFile(t, x1.String()+"\n", 0o604)
	if _, err := crypto.LoadIdentities(open); err == nil || !strings.Contains(err.Error(), "chmod 600 "+open) {
		t.Errorf("LoadIdentities of a mode 0604 file: error %v, want one containing %q", err, "chmod 600 "+open)
	}
	bad := writeKeyFile(t, "garbage\n", 0o600)
	if _, err := crypto.LoadIdentities(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("LoadIdentities of garbage: error %v, want one naming %s", err, bad)
	}
}

func TestSealOpen(t *testing.T) {
	a, b := newIdentity(t), newIdentity(t)
	tests := []struct {
		name      string
		plaintext []byte
	}{
		{"empty", nil},
		{"short", []byte("hello, world")},
		{"one chunk exactly", bytes.Repeat([]byte{'x'}, 64<<10)},
		{"several chunks", randomBytes(t, 200<<10+17)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			sealed, err := crypto.Seal(append([]byte(nil), prefix...), tt.plaintext, a.Recipient(), b.Recipient())
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if !bytes.HasPrefix(sealed, prefix) {
				t.Fatalf("Seal did not append to dst: starts with %q", sealed[:min(len(sealed), 16)])
			}
			sealed = sealed[len(prefix):]
			if !bytes.HasPrefix(sealed, []byte("age-encryption.org/v1\n")) {
				t.Errorf("sealed object does not start with the age header line")
			}
			for name, id := range map[string]age.Identity{"a": a, "b": b} {
				got, err := crypto.Open(sealed, id)
				if err != nil {
					t.Fatalf("Open with identity %s: %v", name, err)
				}
				if !bytes.Equal(got, tt.plaintext) {
					t.Errorf("Open with identity %s: got %d bytes, want the %d plaintext bytes", name, len(got), len(tt.plaintext))
				}
			}
		})
	}
}

func TestOpenWrongIdentity(t *testing.T) {
	right, wrong := newIdentity(t), newIdentity(t)
	sealed, err := crypto.Seal(nil, []byte("secret"), right.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	got, err := crypto.Open(sealed, wrong)
	if !errors.Is(err, crypto.ErrNoKey) {
		t.Fatalf("Open with the wrong identity = %q, %v; want an error matching ErrNoKey", got, err)
	}
	// Several wrong identities are still no key.
	if _, err := crypto.Open(sealed, wrong, newIdentity(t)); !errors.Is(err, crypto.ErrNoKey) {
		t.Errorf("Open with two wrong identities: %v, want ErrNoKey", err)
	}
	// A wrong one among right ones is fine.
	if _, err := crypto.Open(sealed, wrong, right); err != nil {
		t.Errorf("Open with a wrong and the right identity: %v", err)
	}
}

func TestOpenDamaged(t *testing.T) {
	id := newIdentity(t)
	plaintext := randomBytes(t, 100<<10)
	sealed, err := crypto.Seal(nil, plaintext, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := append([]byte(nil), sealed...)
		c[i] ^= 0x01
		return c
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"truncated in the header", sealed[:20]},
		{"truncated in the body", sealed[:len(sealed)-100]},
		{"last byte flipped", flip(len(sealed) - 1)},
		{"body byte flipped", flip(len(sealed) / 2)},
		{"empty", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := crypto.Open(tt.data, id)
			if err == nil {
				t.Fatalf("Open of a damaged file returned %d bytes and no error", len(got))
			}
			if errors.Is(err, crypto.ErrNoKey) {
				t.Errorf("Open of a damaged file: %v matches ErrNoKey, want a decryption error (the key is right)", err)
			}
		})
	}
}

func TestOpenReaderAt(t *testing.T) {
	id := newIdentity(t)
	plaintext := randomBytes(t, 200<<10+1234) // four age chunks, the last partial
	sealed, err := crypto.Seal(nil, plaintext, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	src := &countingReaderAt{r: bytes.NewReader(sealed)}
	ra, size, err := crypto.OpenReaderAt(src, int64(len(sealed)), id)
	if err != nil {
		t.Fatalf("OpenReaderAt: %v", err)
	}
	if size != int64(len(plaintext)) {
		t.Fatalf("plaintext size = %d, want %d", size, len(plaintext))
	}
	const chunk = 64 << 10
	tests := []struct {
		off, n int64
	}{
		{0, 1},
		{0, 100},
		{chunk - 1, 2}, // across the first chunk boundary
		{chunk, chunk},
		{chunk + 7, 2*chunk + 1},
		{3*chunk - 10, 30},
		{size - 1, 1},
		{size - 500, 500},
		{12345, 0},
	}
	for _, tt := range tests {
		buf := make([]byte, tt.n)
		n, err := ra.ReadAt(buf, tt.off)
		if n != int(tt.n) || (err != nil && err != io.EOF) {
			t.Errorf("ReadAt(%d bytes at %d) = %d, %v; want %d bytes", tt.n, tt.off, n, err, tt.n)
			continue
		}
		if !bytes.Equal(buf, plaintext[tt.off:tt.off+tt.n]) {
			t.Errorf("ReadAt(%d bytes at %d) differs from the plaintext", tt.n, tt.off)
		}
	}
	// A read over the end returns what there is and io.EOF.
	buf := make([]byte, 100)
	n, err := ra.ReadAt(buf, size-40)
	if n != 40 || err != io.EOF {
		t.Errorf("ReadAt across the end = %d, %v; want 40, io.EOF", n, err)
	}
	if !bytes.Equal(buf[:n], plaintext[size-40:]) {
		t.Errorf("ReadAt across the end: bytes differ from the plaintext tail")
	}
	if n, err := ra.ReadAt(buf, size+10); n != 0 || err == nil {
		t.Errorf("ReadAt past the end = %d, %v; want 0 and an error", n, err)
	}

	// Random access does not read the whole file for a small read.
	src.n = 0
	if _, err := ra.ReadAt(make([]byte, 10), 2*chunk+5); err != nil {
		t.Fatal(err)
	}
	if src.n >= int64(len(sealed))/2 {
		t.Errorf("a 10-byte read fetched %d of %d encrypted bytes, want about one chunk", src.n, len(sealed))
	}

	if _, _, err := crypto.OpenReaderAt(bytes.NewReader(sealed), int64(len(sealed)), newIdentity(t)); !errors.Is(err, crypto.ErrNoKey) {
		t.Errorf("OpenReaderAt with the wrong identity: %v, want ErrNoKey", err)
	}
}

type countingReaderAt struct {
	r *bytes.Reader
	n int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

func TestCheckHeader(t *testing.T) {
	right, wrong := newIdentity(t), newIdentity(t)
	sealed, err := crypto.Seal(nil, randomBytes(t, 100<<10), right.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	hdrEnd := bytes.Index(sealed, []byte("\n---"))
	if hdrEnd < 0 {
		t.Fatal("no header MAC line in the sealed file")
	}
	hdrEnd += bytes.IndexByte(sealed[hdrEnd+1:], '\n') + 2 // through the MAC line's newline

	if err := crypto.CheckHeader(sealed[:hdrEnd], right); err != nil {
		t.Errorf("CheckHeader(exact header, right identity) = %v, want nil", err)
	}
	if err := crypto.CheckHeader(sealed[:min(len(sealed), 8192)], right); err != nil {
		t.Errorf("CheckHeader(8 KiB prefix, right identity) = %v, want nil", err)
	}
	if err := crypto.CheckHeader(sealed[:hdrEnd], wrong); !errors.Is(err, crypto.ErrNoKey) {
		t.Errorf("CheckHeader(wrong identity) = %v, want ErrNoKey", err)
	}
	if err := crypto.CheckHeader(sealed[:hdrEnd-10], right); err == nil || errors.Is(err, crypto.ErrNoKey) {
		t.Errorf("CheckHeader(truncated header) = %v, want an error that is not ErrNoKey", err)
	}
	if err := crypto.CheckHeader([]byte("not an age file"), right); err == nil {
		t.Errorf("CheckHeader(garbage) = nil, want an error")
	}
	// A tampered header fails the header MAC.
	bad := append([]byte(nil), sealed[:hdrEnd]...)
	bad[hdrEnd-5] ^= 1
	if err := crypto.CheckHeader(bad, right); err == nil {
		t.Errorf("CheckHeader(tampered MAC) = nil, want an error")
	}
}

func TestHasher(t *testing.T) {
	k1 := bytes.Repeat([]byte{1}, 32)
	k2 := bytes.Repeat([]byte{2}, 32)
	data := []byte("chunk contents")

	sum := func(key, data []byte) []byte { return crypto.NewHasher(key).Sum(nil, data) }
	// docs/FORMAT.md: a blob's ID is BLAKE3-keyed(chunk-id key, plaintext),
	// 256 bits. Another implementation must find the same IDs.
	ref, err := blake3.NewKeyed(k1)
	if err != nil {
		t.Fatal(err)
	}
	ref.Write(data)
	if got, want := sum(k1, data), ref.Sum(nil); !bytes.Equal(got, want) || len(got) != 32 {
		t.Errorf("Sum = %x, want keyed BLAKE3 %x", got, want)
	}
	if bytes.Equal(sum(k1, data), sum(k2, data)) {
		t.Errorf("the same data has the same ID under two different keys")
	}
	if !bytes.Equal(sum(k1, data), sum(append([]byte(nil), k1...), data)) {
		t.Errorf("the same key gives different IDs")
	}
	if bytes.Equal(sum(k1, data), sum(k1, []byte("other contents"))) {
		t.Errorf("different data has the same ID")
	}

	// One Hasher reused: every Sum starts afresh and appends to dst.
	h := crypto.NewHasher(k1)
	first := h.Sum(nil, []byte("other"))
	got := h.Sum([]byte("id:"), data)
	if !bytes.HasPrefix(got, []byte("id:")) || !bytes.Equal(got[3:], sum(k1, data)) {
		t.Errorf("reused Hasher: Sum = %x, want \"id:\" + %x", got, sum(k1, data))
	}
	if again := h.Sum(nil, []byte("other")); !bytes.Equal(again, first) {
		t.Errorf("reused Hasher: same data gave %x then %x", first, again)
	}

	// Either implementation, on both sides of the size that picks one, the
	// same IDs as the reference; a Hasher that moves between them too.
	for _, n := range []int{0, 1, 1023, 1024, 1025, 8 << 10, 16<<10 - 1, 16 << 10, 16<<10 + 1, 100_000, 1<<20 + 17} {
		d := make([]byte, n)
		for i := range d {
			d[i] = byte(i*13 + 5)
		}
		ref.Reset()
		ref.Write(d)
		if got, want := h.Sum(nil, d), ref.Sum(nil); !bytes.Equal(got, want) {
			t.Errorf("Sum of %d bytes = %x, want keyed BLAKE3 %x", n, got, want)
		}
	}
}

func TestIndexKeyDerivedKeys(t *testing.T) {
	id := newIdentity(t)
	k := crypto.NewIndexKey(id)
	same := crypto.NewIndexKey(id)
	other := crypto.NewIndexKey(newIdentity(t))

	a := k.ChunkIDKey("repo-a")
	if len(a) != 32 {
		t.Fatalf("ChunkIDKey length = %d, want 32", len(a))
	}
	if !bytes.Equal(a, same.ChunkIDKey("repo-a")) {
		t.Errorf("ChunkIDKey is not deterministic for the same identity and repo ID")
	}
	if bytes.Equal(a, k.ChunkIDKey("repo-b")) {
		t.Errorf("ChunkIDKey is the same for two repo IDs")
	}
	if bytes.Equal(a, other.ChunkIDKey("repo-a")) {
		t.Errorf("ChunkIDKey is the same for two identities")
	}
	if bytes.Equal(a, k.ConfigMACKey("repo-a")) {
		t.Errorf("ChunkIDKey equals ConfigMACKey: the purposes are not separated")
	}
	if bytes.Equal(k.ConfigMACKey("repo-a"), k.ConfigMACKey("repo-b")) {
		t.Errorf("ConfigMACKey is the same for two repo IDs")
	}
	if got := k.Path(); got != "" {
		t.Errorf("NewIndexKey(...).Path() = %q, want empty", got)
	}
	if got, want := k.Recipient().String(), id.Recipient().String(); got != want {
		t.Errorf("Recipient() = %s, want %s", got, want)
	}
	// The identity opens what is sealed to the recipient.
	sealed, err := crypto.Seal(nil, []byte("x"), k.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crypto.Open(sealed, k.Identity()); err != nil {
		t.Errorf("Identity() does not open a file sealed to Recipient(): %v", err)
	}
}

func TestParseRecipient(t *testing.T) {
	x := newIdentity(t)
	hybrid, err := age.GenerateHybridIdentity()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{x.Recipient().String(), "  " + x.Recipient().String() + "\n", hybrid.Recipient().String()} {
		r, err := crypto.ParseRecipient(s)
		if err != nil {
			t.Errorf("ParseRecipient(%.20q…) = %v, want success", s, err)
			continue
		}
		if got, want := r.(interface{ String() string }).String(), strings.TrimSpace(s); got != want {
			t.Errorf("ParseRecipient(%.20q…) = %s, want %s", s, got, want)
		}
	}

	// The last character of a bech32 key is checksum; change it.
	rs := x.Recipient().String()
	badSum := rs[:len(rs)-1] + "q"
	if rs[len(rs)-1] == 'q' {
		badSum = rs[:len(rs)-1] + "p"
	}
	bad := []struct {
		name, in string
	}{
		{"empty", ""},
		{"blank", " \t\n"},
		{"not bech32", "age1notakey"},
		{"bad checksum", badSum},
		{"secret key", x.String()},
		{"two recipients", x.Recipient().String() + "\n" + hybrid.Recipient().String()},
		{"comment only", "# public key: nothing"},
		{"ssh-like", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r, err := crypto.ParseRecipient(tt.in)
			if err == nil {
				t.Fatalf("ParseRecipient(%q) = %v, want an error", tt.in, r)
			}
			// The input is abbreviated in the message: a pasted secret key
			// must never be echoed whole.
			if len(strings.TrimSpace(tt.in)) > 12 && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
				t.Errorf("error %q repeats the whole input", err)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	a := newIdentity(t).Recipient().String()
	b := newIdentity(t).Recipient().String()
	fa := crypto.Fingerprint(a)
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(fa) {
		t.Errorf("Fingerprint = %q, want 16 lower-case hex digits", fa)
	}
	if fa != crypto.Fingerprint(a) {
		t.Errorf("Fingerprint is not deterministic")
	}
	if fa == crypto.Fingerprint(b) {
		t.Errorf("two recipients have the same fingerprint %s", fa)
	}
	sum := sha256.Sum256([]byte(a))
	if want := hex.EncodeToString(sum[:8]); fa != want {
		t.Errorf("Fingerprint = %s, want the first 8 bytes of SHA-256 %s", fa, want)
	}
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
