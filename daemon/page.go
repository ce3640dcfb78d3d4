package daemon

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"
)

//go:embed page.html
var pageHTML string

// pageTmpl is the status page. html/template escapes every value for the
// context it lands in; its script refreshes the page from /status and
// writes data with textContent only.
var pageTmpl = template.Must(template.New("page").Parse(pageHTML))

// pageData is what page.html renders: the daemon's Status as /status
// serves it, seen at Now.
type pageData struct {
	Nonce    string // of the Content-Security-Policy, for the page's script and style
	Now      time.Time
	Status   Status
	Snapshot *SnapshotInfo // the last snapshot; nil: none yet
	// Alerts are the active alerts, one line each, from the "alerts" key
	// of /status (absent: none).
	Alerts []string
}

// servePage serves the status page: the first view rendered here from
// Status, so it reads without JavaScript, then refreshed by its script.
func (d *Daemon) servePage(w http.ResponseWriter, r *http.Request) {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	p := pageData{Nonce: base64.StdEncoding.EncodeToString(nonce), Now: time.Now(), Status: d.Status()}
	for _, f := range p.Status.Folders {
		if f.LastSnapshot != nil {
			p.Snapshot = f.LastSnapshot
			break
		}
	}
	alerts, err := statusAlerts(p.Status)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	p.Alerts = alerts
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, p); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "status page: " + err.Error()})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", fmt.Sprintf("default-src 'none'; script-src 'nonce-%[1]s'; style-src 'nonce-%[1]s'; "+
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'", p.Nonce))
	w.Write(buf.Bytes())
}

// statusAlerts returns what st carries under the "alerts" key of its JSON
// form, one line per alert, as the page's script shows them: an alert's
// "text" when it has one, else its fields as "key: value" in key order.
func statusAlerts(st Status) ([]string, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	var v struct {
		Alerts []any `json:"alerts"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("status alerts: %w", err)
	}
	var out []string
	for _, a := range v.Alerts {
		out = append(out, alertLine(a))
	}
	return out, nil
}

func alertLine(a any) string {
	m, ok := a.(map[string]any)
	if !ok {
		if s, ok := a.(string); ok {
			return s
		}
		b, _ := json.Marshal(a)
		return string(b)
	}
	if s, ok := m["text"].(string); ok && s != "" {
		return s
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v, ok := m[k].(string)
		if !ok {
			b, _ := json.Marshal(m[k])
			v = string(b)
		}
		parts[i] = k + ": " + v
	}
	return strings.Join(parts, ", ")
}

// The methods below format values as the page's script does, so that a
// refresh changes only what changed.

// UTC formats t as "2006-01-02 15:04:05 UTC".
func (pageData) UTC(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") + " UTC" }

// Ago says how long before p.Now t was: "12s ago", "5m ago"; "never" for nil.
func (p pageData) Ago(t *time.Time) string {
	if t == nil {
		return "never"
	}
	secs := int64(max(p.Now.Sub(*t), 0) / time.Second)
	switch {
	case secs < 60:
		return fmt.Sprintf("%ds ago", secs)
	case secs < 3600:
		return fmt.Sprintf("%dm ago", secs/60)
	case secs < 86400:
		return fmt.Sprintf("%dh ago", secs/3600)
	}
	return fmt.Sprintf("%dd ago", secs/86400)
}

// Bytes formats n in binary units: "512 B", "1.5 KiB".
func (pageData) Bytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB"}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// Pending is a folder's pending count, "scanning" during a full scan.
func (pageData) Pending(n int64) string {
	if n < 0 {
		return "scanning"
	}
	return fmt.Sprint(n)
}

// Conn is a peer's state: "connected" or "down".
func (pageData) Conn(connected bool) string {
	if connected {
		return "connected"
	}
	return "down"
}

// Result is a drill's result: "ok" or "failed".
func (pageData) Result(ok bool) string {
	if ok {
		return "ok"
	}
	return "failed"
}

// Secs formats a number of seconds as "42s", "5m 3s", "2h 5m" or "3d 4h".
func (pageData) Secs(f float64) string {
	n := int64(f + 0.5)
	switch {
	case n < 60:
		return fmt.Sprintf("%ds", n)
	case n < 3600:
		return fmt.Sprintf("%dm %ds", n/60, n%60)
	case n < 86400:
		return fmt.Sprintf("%dh %dm", n/3600, n%3600/60)
	}
	return fmt.Sprintf("%dd %dh", n/86400, n%86400/3600)
}
