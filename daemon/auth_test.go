package daemon

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testToken = "0123456789abcdef0123456789abcdef"

// tokenFile writes content to a new file of mode perm and returns its path.
func tokenFile(t *testing.T, content string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "http.token")
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

func TestAccessGuard(t *testing.T) {
	good := tokenFile(t, testToken+"\n", 0o600)
	tests := []struct {
		name       string
		http, file string // node.http, node.http_token_file
		method     string
		path       string
		auth       string // Authorization header; "" sends none
		want       int
	}{
		{"loopback no token file: POST open", "127.0.0.1:7411", "", "POST", "/snapshot", "", 200},
		{"loopback no token file: GET open", "127.0.0.1:7411", "", "GET", "/status", "", 200},
		{"loopback: POST without token", "127.0.0.1:7411", good, "POST", "/snapshot", "", 401},
		{"loopback: POST wrong token", "127.0.0.1:7411", good, "POST", "/snapshot", "Bearer " + testToken + "x", 401},
		{"loopback: POST token prefix", "127.0.0.1:7411", good, "POST", "/revert", "Bearer " + testToken[:20], 401},
		{"loopback: POST token as Basic", "127.0.0.1:7411", good, "POST", "/snapshot", "Basic " + testToken, 401},
		{"loopback: POST bare token", "127.0.0.1:7411", good, "POST", "/snapshot", testToken, 401},
		{"loopback: POST right token", "127.0.0.1:7411", good, "POST", "/snapshot", "Bearer " + testToken, 200},
		{"loopback: POST scheme in lower case", "[::1]:7411", good, "POST", "/confirm-deletes", "bearer " + testToken, 200},
		{"loopback: GET status without token", "localhost:7411", good, "GET", "/status", "", 200},
		{"loopback: GET page without token", "127.0.0.1:7411", good, "GET", "/", "", 200},
		{"off loopback: GET status without token", "0.0.0.0:7411", good, "GET", "/status", "", 401},
		{"off loopback: GET page wrong token", "10.0.0.1:7411", good, "GET", "/", "Bearer nope", 401},
		{"off loopback: HEAD metrics without token", ":7411", good, "HEAD", "/metrics", "", 401},
		{"off loopback: GET status right token", "0.0.0.0:7411", good, "GET", "/status", "Bearer " + testToken, 200},
		{"off loopback: POST without token", "0.0.0.0:7411", good, "POST", "/snapshot", "", 401},
		{"off loopback: POST right token", "0.0.0.0:7411", good, "POST", "/snapshot", "Bearer " + testToken, 200},
		{"off loopback: healthz open", "0.0.0.0:7411", good, "GET", "/healthz", "", 200},
		{"off loopback: readyz open", "0.0.0.0:7411", good, "GET", "/readyz", "", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := newAccess(tt.http, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			served := false
			h := a.guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served = true }))
			req := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("%s %s: got %d, want %d (%s)", tt.method, tt.path, rec.Code, tt.want, rec.Body)
			}
			if served != (tt.want == 200) {
				t.Errorf("%s %s: handler called = %v with status %d", tt.method, tt.path, served, rec.Code)
			}
			if tt.want != 401 {
				return
			}
			body := rec.Body.String()
			var e struct{ Error string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" || strings.Count(body, "\n") != 1 {
				t.Errorf("401 body is not a one-line JSON error: %q (%v)", body, err)
			}
			if strings.Contains(body, testToken[:16]) {
				t.Errorf("401 body shows the token: %q", body)
			}
		})
	}
}

func TestNewAccess(t *testing.T) {
	tests := []struct {
		name       string
		http, file string
		wantErr    string // "" for none
	}{
		{"off loopback without token file", "0.0.0.0:7411", "", "node.http_token_file is required"},
		{"empty host without token file", ":7411", "", "node.http_token_file is required"},
		{"missing file", "127.0.0.1:7411", filepath.Join(t.TempDir(), "none"), "does not exist"},
		{"readable by group", "127.0.0.1:7411", tokenFile(t, testToken, 0o640), "chmod 600"},
		{"readable by others", "0.0.0.0:7411", tokenFile(t, testToken, 0o604), "chmod 600"},
		{"too short", "127.0.0.1:7411", tokenFile(t, "short\n", 0o600), "shorter than"},
		{"empty", "127.0.0.1:7411", tokenFile(t, "", 0o600), "shorter than"},
		{"two lines", "127.0.0.1:7411", tokenFile(t, testToken+"\n"+testToken+"\n", 0o600), "one line"},
		{"a directory", "127.0.0.1:7411", t.TempDir(), "not a regular file"},
		{"good, CRLF", "0.0.0.0:7411", tokenFile(t, testToken+"\r\n", 0o400), ""},
		{"loopback without token file", "127.0.0.1:7411", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newAccess(tt.http, tt.file)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error with %q", err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), testToken[:8]):
				t.Fatalf("error shows the token: %v", err)
			}
		})
	}
}
