package daemon

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
)

// MinHTTPToken is the shortest bearer token node.http_token_file may
// hold; `openssl rand -hex 32` makes a good one.
const MinHTTPToken = 16

// access says which requests to node.http need the bearer token of
// node.http_token_file (README "Status page and access"):
//
//   - /healthz and /readyz never do: load balancers and supervisors ask them.
//   - Every other endpoint does when node.http is not a loopback address.
//   - On loopback, POST endpoints (/snapshot, /revert, /confirm-deletes) do
//     when a token file is configured; without one they are open to every
//     local user, and GET endpoints always are.
type access struct {
	token    [sha256.Size]byte // of the token; meaningless when !hasToken
	hasToken bool
	loopback bool // node.http accepts connections from this machine only
}

// newAccess reads the token of node.http_token_file (tokenFile; "" for
// none) for the server listening on httpAddr. It refuses a token file that
// group or others may read, and a non-loopback httpAddr without a token
// file (config validation refuses it first; this is the daemon's own
// guard).
func newAccess(httpAddr, tokenFile string) (access, error) {
	a := access{loopback: isLoopback(httpAddr)}
	if tokenFile == "" {
		if !a.loopback {
			return a, fmt.Errorf("node.http %s is not a loopback address: node.http_token_file is required", httpAddr)
		}
		return a, nil
	}
	tok, err := ReadHTTPToken(tokenFile)
	if err != nil {
		return a, err
	}
	a.token, a.hasToken = sha256.Sum256(tok), true
	return a, nil
}

// isLoopback reports whether the listening address hostPort accepts
// connections from this machine only: localhost or a loopback IP. An
// empty host listens on every interface.
func isLoopback(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ReadHTTPToken reads the bearer token of node.http from the file at path:
// one line of at least MinHTTPToken printable ASCII characters without
// spaces (a trailing newline is fine). Like the key files, it must not be
// accessible by group or others. The token never appears in an error.
func ReadHTTPToken(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("node.http_token_file %s does not exist", path)
		}
		return nil, fmt.Errorf("node.http_token_file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("node.http_token_file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("node.http_token_file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("node.http_token_file %s is accessible by others (mode %04o); run: chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("node.http_token_file: %w", err)
	}
	tok := []byte(strings.TrimRight(string(data), "\r\n"))
	if len(tok) < MinHTTPToken {
		return nil, fmt.Errorf("node.http_token_file %s: the token is shorter than %d characters; make one with: openssl rand -hex 32 > %s",
			path, MinHTTPToken, path)
	}
	for _, c := range tok {
		if c <= ' ' || c > '~' {
			return nil, fmt.Errorf("node.http_token_file %s: the token must be one line of printable ASCII without spaces", path)
		}
	}
	return tok, nil
}

// needsToken reports whether r must carry the bearer token.
func (a access) needsToken(r *http.Request) bool {
	switch r.URL.Path {
	case "/healthz", "/readyz":
		return false
	}
	if !a.loopback {
		return true
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return false
	}
	return a.hasToken
}

// allowed reports whether the Authorization header of r carries the
// token: "Bearer TOKEN", the scheme in any case. The comparison takes the
// same time whatever the header holds.
func (a access) allowed(r *http.Request) bool {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		tok = ""
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(sum[:], a.token[:]) == 1 && a.hasToken
}

// guard serves next the requests that need no token or carry the right
// one, and answers the others 401 with a one-line JSON error, doing
// nothing else.
func (a access) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.needsToken(r) && !a.allowed(r) {
			msg := "wrong bearer token: send Authorization: Bearer <the token of node.http_token_file>"
			if r.Header.Get("Authorization") == "" {
				msg = "this endpoint needs Authorization: Bearer <the token of node.http_token_file>"
			}
			b, _ := json.Marshal(map[string]string{"error": msg})
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("WWW-Authenticate", `Bearer realm="syncd"`)
			w.WriteHeader(http.StatusUnauthorized)
			w.Write(append(b, '\n'))
			return
		}
		next.ServeHTTP(w, r)
	})
}
