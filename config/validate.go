package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/robfig/cron/v3"
)

// validator checks the values of a decoded Config, cleans its paths, and
// names the key and its line in the first problem it finds.
type validator struct {
	file  string
	lines map[string]int // dotted key path → line, from the decoder
}

func (v *validator) validate(c *Config) error {
	checks := []func(*Config) error{v.node, v.peers, v.folders, v.repository, v.alerts}
	for _, check := range checks {
		if err := check(c); err != nil {
			return err
		}
	}
	return nil
}

func (v *validator) node(c *Config) error {
	n := &c.Node
	if err := v.name("node.name", n.Name); err != nil {
		return err
	}
	var err error
	if n.StateDir, err = v.absPath("node.state_dir", n.StateDir); err != nil {
		return err
	}
	if err := v.hostPort("node.listen", n.Listen, true); err != nil {
		return err
	}
	if err := v.hostPort("node.http", n.HTTP, true); err != nil {
		return err
	}
	if n.HTTPTokenFile == "" {
		if !loopback(n.HTTP) {
			e := v.errorf("node.http_token_file", "required when node.http %q is not a loopback address", n.HTTP)
			e.Line = v.line("node.http")
			return e
		}
		return nil
	}
	n.HTTPTokenFile, err = v.absPath("node.http_token_file", n.HTTPTokenFile)
	return err
}

// loopback reports whether the listening address hostPort (already
// checked) is reachable from this machine only: localhost or a loopback
// IP. An empty host listens on every interface.
func loopback(hostPort string) bool {
	host, _, _ := net.SplitHostPort(hostPort)
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (v *validator) alerts(c *Config) error {
	for i := range c.Alerts.Webhooks {
		w := &c.Alerts.Webhooks[i]
		at := fmt.Sprintf("alerts.webhooks[%d]", i)
		if err := v.webhookURL(at+".url", w.URL); err != nil {
			return err
		}
		if w.TokenFile != "" {
			var err error
			if w.TokenFile, err = v.absPath(at+".token_file", w.TokenFile); err != nil {
				return err
			}
		}
	}
	return nil
}

// webhookURL checks an alert webhook address: http:// or https:// and a
// host.
func (v *validator) webhookURL(key, s string) error {
	if s == "" {
		return v.errorf(key, "required")
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Hostname() == "" {
		return v.wrapf(key, err, "want http:// or https:// and a host, like https://hooks.example/syncd, not %q", s)
	}
	return nil
}

func (v *validator) peers(c *Config) error {
	names, ids := map[string]string{}, map[string]string{}
	for i, p := range c.Peers {
		at := fmt.Sprintf("peers[%d]", i)
		if err := v.name(at+".name", p.Name); err != nil {
			return err
		}
		if p.Name == c.Node.Name {
			return v.errorf(at+".name", "%q is this node's own name (node.name)", p.Name)
		}
		if first, dup := names[p.Name]; dup {
			return v.errorf(at+".name", "duplicate peer name %q (first at line %d)", p.Name, v.line(first))
		}
		names[p.Name] = at + ".name"
		if p.ID == "" {
			return v.errorf(at+".id", "required: the node ID `syncd id` prints on %s", p.Name)
		}
		if !nodeIDShape(p.ID) {
			return v.errorf(at+".id", "%q is not a node ID: 52 base32 characters (A-Z, 2-7), dashes allowed, as `syncd id` prints on %s", p.ID, p.Name)
		}
		if first, dup := ids[p.ID]; dup {
			return v.errorf(at+".id", "the same ID as the peer at line %d", v.line(first))
		}
		ids[p.ID] = at + ".id"
		if err := v.hostPort(at+".address", p.Address, false); err != nil {
			return err
		}
		switch p.Compression {
		case CompressAuto, CompressAlways, CompressNever:
		case "":
			c.Peers[i].Compression = CompressAuto
		default:
			return v.errorf(at+".compression", "%q: want auto, always or never", p.Compression)
		}
	}
	return nil
}

func (v *validator) folders(c *Config) error {
	peers := map[string]bool{}
	for _, p := range c.Peers {
		peers[p.Name] = true
	}
	ids := map[string]string{}
	for i := range c.Folders {
		f := &c.Folders[i]
		at := fmt.Sprintf("folders[%d]", i)
		if err := v.name(at+".id", f.ID); err != nil {
			return err
		}
		if first, dup := ids[f.ID]; dup {
			return v.errorf(at+".id", "duplicate folder id %q (first at line %d)", f.ID, v.line(first))
		}
		ids[f.ID] = at + ".id"
		var err error
		if f.Path, err = v.absPath(at+".path", f.Path); err != nil {
			return err
		}
		switch f.Mode {
		case SendOnly, ReceiveOnly, SendReceive:
		default:
			return v.errorf(at+".mode", "want send-only, receive-only or send-receive, not %q", f.Mode)
		}
		listed := map[string]bool{}
		for j, p := range f.Peers {
			key := fmt.Sprintf("%s.peers[%d]", at, j)
			if !peers[p] {
				return v.errorf(key, "%q is not a configured peer (peers[].name)", p)
			}
			if listed[p] {
				return v.errorf(key, "peer %q listed twice", p)
			}
			listed[p] = true
		}
		for j, pat := range f.Ignore {
			if _, err := compile(pat); err != nil {
				return v.wrapf(fmt.Sprintf("%s.ignore[%d]", at, j), err, "%v", err)
			}
		}
	}
	return v.overlaps(c)
}

// overlaps refuses a folder inside another one, or holding or inside the
// state directory: the same file would be mirrored twice, or the index
// would be mirrored and snapshotted with the content.
// Paths are compared as they resolve: a symlink to another folder is that
// folder.
func (v *validator) overlaps(c *Config) error {
	state := Resolve(c.Node.StateDir)
	real := make([]string, len(c.Folders))
	for i, f := range c.Folders {
		real[i] = Resolve(f.Path)
	}
	for i, f := range c.Folders {
		at := fmt.Sprintf("folders[%d].path", i)
		p := real[i]
		if within(p, state) || within(state, p) {
			return v.errorf(at, "%s overlaps node.state_dir %s (line %d)", shown(f.Path, p), c.Node.StateDir, v.line("node.state_dir"))
		}
		for j, g := range c.Folders[:i] {
			other := fmt.Sprintf("folders[%d].path", j)
			q := real[j]
			switch {
			case p == q:
				return v.errorf(at, "%s is also the path of folder %q (line %d)", shown(f.Path, p), g.ID, v.line(other))
			case within(p, q):
				return v.errorf(at, "%s is inside the path of folder %q, %s (line %d)", shown(f.Path, p), g.ID, shown(g.Path, q), v.line(other))
			case within(q, p):
				return v.errorf(at, "%s holds the path of folder %q, %s (line %d)", shown(f.Path, p), g.ID, shown(g.Path, q), v.line(other))
			}
		}
	}
	return nil
}

// shown names a configured path and, when a symlink makes it another,
// what it resolves to.
func shown(path, real string) string {
	if path == real {
		return path
	}
	return path + " (resolves to " + real + ")"
}

// Resolve returns the clean absolute path p with every symlink of its
// longest existing prefix resolved; the part that does not exist yet is
// kept as written. It never fails: a path it cannot resolve is returned
// as it is.
func Resolve(p string) string {
	rest := ""
	for dir := p; ; dir = filepath.Dir(dir) {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(r, rest)
		}
		if dir == filepath.Dir(dir) {
			return p
		}
		rest = filepath.Join(filepath.Base(dir), rest)
	}
}

// within reports whether the clean absolute path p is dir or below it.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

func (v *validator) repository(c *Config) error {
	r := c.Repository
	if r == nil {
		return nil
	}
	if err := v.repoURL("repository.url", r.URL); err != nil {
		return err
	}
	var err error
	if r.IndexKey, err = v.absPath("repository.index_key", r.IndexKey); err != nil {
		return err
	}
	for i, rcpt := range r.DataRecipients {
		if strings.TrimSpace(rcpt) == "" {
			return v.errorf(fmt.Sprintf("repository.data_recipients[%d]", i), "empty recipient")
		}
	}
	if err := v.copies(r); err != nil {
		return err
	}
	if err := v.s3Options("repository", r.URL, "repository", r.S3Upload); err != nil {
		return err
	}
	if r.Schedule != "" {
		if err := parseSchedule(r.Schedule); err != nil {
			return v.wrapf("repository.schedule", err, "bad cron expression %q (want 5 fields: minute hour day-of-month month day-of-week): %v", r.Schedule, err)
		}
	}
	t := r.Retention
	for _, n := range []struct {
		key string
		n   int
	}{
		{"keep_last", t.KeepLast}, {"keep_hourly", t.KeepHourly}, {"keep_daily", t.KeepDaily},
		{"keep_weekly", t.KeepWeekly}, {"keep_monthly", t.KeepMonthly}, {"keep_yearly", t.KeepYearly},
	} {
		if n.n < 0 {
			return v.errorf("repository.retention."+n.key, "want 0 or more, not %d", n.n)
		}
	}
	for _, l := range []struct {
		key  string
		tags []string
	}{{"keep_tags", t.KeepTags}, {"tags", t.Tags}} {
		for i, tag := range l.tags {
			if tag == "" {
				return v.errorf(fmt.Sprintf("repository.retention.%s[%d]", l.key, i), "empty tag")
			}
		}
	}
	if t.GroupBy != nil {
		for _, f := range strings.Split(*t.GroupBy, ",") {
			switch f {
			case "host", "hosts", "path", "paths", "tag", "tags", "":
			default:
				return v.errorf("repository.retention.group_by", "unknown field %q in %q: want host, paths and/or tags separated by commas, or \"\" for one group", f, *t.GroupBy)
			}
		}
	}
	for i, p := range t.Paths {
		if t.Paths[i], err = v.absPath(fmt.Sprintf("repository.retention.paths[%d]", i), p); err != nil {
			return err
		}
	}
	return nil
}

// parseSchedule parses a schedule as the scheduler will, with
// cron.ParseStandard, which panics on a time zone prefix without a
// schedule after it ("TZ=UTC").
func parseSchedule(s string) error {
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		if !strings.Contains(s, " ") {
			return fmt.Errorf("no schedule after the time zone")
		}
	}
	_, err := cron.ParseStandard(s)
	return err
}

// name checks a node, peer or folder name.
func (v *validator) name(key, s string) error {
	if s == "" {
		return v.errorf(key, "required")
	}
	if s == "." || s == ".." {
		return v.errorf(key, "%q is not a valid name", s)
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-') {
			return v.errorf(key, "%q is not a valid name (letters, digits, '.', '_' and '-' only)", s)
		}
	}
	return nil
}

// absPath checks that s is an absolute path and returns it cleaned.
func (v *validator) absPath(key, s string) (string, error) {
	if s == "" {
		return "", v.errorf(key, "required")
	}
	if !filepath.IsAbs(s) {
		return "", v.errorf(key, "want an absolute path, not %q", s)
	}
	return filepath.Clean(s), nil
}

// hostPort checks a host:port address; a listening address may leave the
// host empty (every interface) and use port 0 (any free port).
func (v *validator) hostPort(key, s string, listen bool) error {
	if s == "" {
		return v.errorf(key, "required")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return v.wrapf(key, err, "want host:port, not %q", s)
	}
	if host == "" && !listen {
		return v.errorf(key, "want host:port, not %q (missing host)", s)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 && !listen {
		return v.errorf(key, "want host:port with a port number from 1 to 65535, not %q", s)
	}
	return nil
}

// repoURL checks a repository location: s3://BUCKET[/PREFIX] or an
// absolute directory.
func (v *validator) repoURL(key, s string) error {
	if s == "" {
		return v.errorf(key, "required")
	}
	if rest, ok := strings.CutPrefix(s, "s3://"); ok {
		if bucket, _, _ := strings.Cut(rest, "/"); bucket == "" {
			return v.errorf(key, "want s3://BUCKET[/PREFIX], not %q (no bucket)", s)
		}
		return nil
	}
	if i := strings.Index(s, "://"); i > 0 {
		return v.errorf(key, "unknown scheme %q in %q (want s3://BUCKET[/PREFIX] or an absolute directory)", s[:i], s)
	}
	if !filepath.IsAbs(s) {
		return v.errorf(key, "want s3://BUCKET[/PREFIX] or an absolute directory, not %q", s)
	}
	return nil
}

// line is the line of key, or of the nearest enclosing key the file has
// (a missing required key is reported at its parent).
func (v *validator) line(key string) int {
	for {
		if n, ok := v.lines[key]; ok {
			return n
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			return v.lines[""]
		}
		key = key[:i]
	}
}

func (v *validator) errorf(key, format string, args ...any) *Error {
	return v.wrapf(key, nil, format, args...)
}

func (v *validator) wrapf(key string, err error, format string, args ...any) *Error {
	msg := key + ": " + fmt.Sprintf(format, args...)
	return &Error{File: v.file, Line: v.line(key), Key: key, Msg: msg, Err: err}
}

// nodeIDShape reports whether s looks like a node ID (transfer/tlsid
// checks it fully): 52 base32 characters once dashes are dropped.
func nodeIDShape(s string) bool {
	n := 0
	for _, c := range s {
		switch {
		case c == '-':
			continue
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '2' && c <= '7':
			n++
		default:
			return false
		}
	}
	return n == 52
}
