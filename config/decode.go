package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/syncd/syncd/internal/span"
)

// decoder walks the yaml.Node tree of a file into a Config. It accepts
// exactly the keys it knows and records the line of each key (by its
// dotted path) for the validator's messages.
type decoder struct {
	file  string
	lines map[string]int
	// folderWatch holds each folder's own watch: values, merged over the
	// top-level ones once the whole file is read.
	folderWatch []watchOverride
}

type watchOverride struct{ debounce, rescan *time.Duration }

// handler decodes the value v of the key at path (on line).
type handler func(v *yaml.Node, path string, line int) error

// syntaxLine finds the line in the messages of the YAML parser.
var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// MaxFileSize is the largest configuration file read, 1 MiB: a real one is
// a few kilobytes, and a larger one (a wrong path, a device, a hostile
// file) is refused before the YAML parser spends memory on it.
const MaxFileSize = 1 << 20

// readAtMost reads the file at path up to n bytes.
func readAtMost(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

func (d *decoder) decode(data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, &Error{File: d.file, Msg: fmt.Sprintf("larger than the limit of %d MiB; refused", MaxFileSize>>20)}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, d.empty()
		}
		return nil, d.syntaxError(err)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, d.errorf(next.Line, "", "more than one YAML document (a second --- line)")
	} else if !errors.Is(err, io.EOF) {
		return nil, d.syntaxError(err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, d.empty()
		}
		root = root.Content[0]
	}
	root = resolve(root)
	if isNull(root) {
		return nil, d.empty()
	}
	if root.Kind != yaml.MappingNode {
		return nil, d.errorf(root.Line, "", "want a mapping of keys (node:, peers:, …) at top level")
	}
	d.lines[""] = root.Line
	c := &Config{Watch: Watch{Debounce: DefaultDebounce, Rescan: DefaultRescan}}
	err := d.mapping(root, "", map[string]handler{
		"node": func(v *yaml.Node, path string, line int) error {
			return d.node(v, path, line, &c.Node)
		},
		"peers": func(v *yaml.Node, path string, line int) error {
			return d.list(v, path, line, func(item *yaml.Node, path string, line int) error {
				c.Peers = append(c.Peers, Peer{})
				return d.peer(item, path, line, &c.Peers[len(c.Peers)-1])
			})
		},
		"folders": func(v *yaml.Node, path string, line int) error {
			return d.list(v, path, line, func(item *yaml.Node, path string, line int) error {
				c.Folders = append(c.Folders, Folder{})
				d.folderWatch = append(d.folderWatch, watchOverride{})
				return d.folder(item, path, line, &c.Folders[len(c.Folders)-1], &d.folderWatch[len(d.folderWatch)-1])
			})
		},
		"repository": func(v *yaml.Node, path string, line int) error {
			if isNull(v) {
				return nil
			}
			c.Repository = &Repository{SkipUnchanged: true}
			return d.repository(v, path, line, c.Repository)
		},
		"watch": func(v *yaml.Node, path string, line int) error {
			w := watchOverride{debounce: &c.Watch.Debounce, rescan: &c.Watch.Rescan}
			return d.watch(v, path, line, &w)
		},
		"alerts": func(v *yaml.Node, path string, line int) error {
			return d.alerts(v, path, line, &c.Alerts)
		},
	}, root.Line)
	if err != nil {
		return nil, err
	}
	for i, o := range d.folderWatch {
		c.Folders[i].Watch = c.Watch
		if o.debounce != nil {
			c.Folders[i].Watch.Debounce = *o.debounce
		}
		if o.rescan != nil {
			c.Folders[i].Watch.Rescan = *o.rescan
		}
	}
	return c, nil
}

func (d *decoder) node(v *yaml.Node, path string, line int, n *Node) error {
	return d.mapping(v, path, map[string]handler{
		"name":            d.str(&n.Name),
		"state_dir":       d.str(&n.StateDir),
		"listen":          d.str(&n.Listen),
		"http":            d.str(&n.HTTP),
		"http_token_file": d.str(&n.HTTPTokenFile),
		"max_lag":         d.duration(&n.MaxLag, 0, "above 0, like 30s or 2m"),
		"max_send_rate":   d.rate(&n.MaxSendRate),
		"max_recv_rate":   d.rate(&n.MaxRecvRate),
	}, line)
}

func (d *decoder) alerts(v *yaml.Node, path string, line int, a *Alerts) error {
	return d.mapping(v, path, map[string]handler{
		"webhooks": func(v *yaml.Node, path string, line int) error {
			return d.list(v, path, line, func(item *yaml.Node, path string, line int) error {
				a.Webhooks = append(a.Webhooks, Webhook{})
				w := &a.Webhooks[len(a.Webhooks)-1]
				return d.mapping(item, path, map[string]handler{
					"url":        d.str(&w.URL),
					"token_file": d.str(&w.TokenFile),
					"timeout":    d.duration(&w.Timeout, 0, "above 0, like 10s"),
				}, line)
			})
		},
		"repeat": d.duration(&a.Repeat, MinRepeat-1, "of at least 1m, like 4h or 30m"),
	}, line)
}

// duration decodes an elapsed span ([span.ParseElapsed]: Go's "30s",
// "4h", and days, "2d") into *p; it must be above floor, which want
// describes in the message. Null leaves *p zero, for the default; the
// empty string is an error.
func (d *decoder) duration(p *time.Duration, floor time.Duration, want string) handler {
	return parsed(d, p, func(s string) (time.Duration, error) {
		x, err := span.ParseElapsed(s)
		if err == nil && x <= floor {
			err = errors.New("too small")
		}
		return x, err
	}, func(path, s string, _ error) string {
		return fmt.Sprintf("%s: want a duration %s, not %q", path, want, s)
	})
}

// calendar decodes a calendar span ([span.ParseCalendar], restic's
// "1y2m3d4h") into *c; the message names the key and says what is wrong.
// Null leaves *c zero; the empty string is an error.
func (d *decoder) calendar(c *span.Calendar) handler {
	return parsed(d, c, span.ParseCalendar, func(path, s string, err error) string {
		return fmt.Sprintf("%s: %q: %v", path, s, err)
	})
}

// parsed decodes a string with parse into *p, the handler of a value
// written as text (a duration, a span, a rate). Null leaves *p zero, for
// the default; what parse refuses is an error whose message bad words.
func parsed[T any](d *decoder, p *T, parse func(string) (T, error), bad func(path, s string, err error) string) handler {
	return func(v *yaml.Node, path string, line int) error {
		if isNull(resolve(v)) {
			var zero T
			*p = zero
			return nil
		}
		var s string
		if err := d.str(&s)(v, path, line); err != nil {
			return err
		}
		x, err := parse(s)
		if err != nil {
			return d.errorf(line, path, "%s", bad(path, s, err))
		}
		*p = x
		return nil
	}
}

func (d *decoder) peer(v *yaml.Node, path string, line int, p *Peer) error {
	return d.mapping(v, path, map[string]handler{
		"name":          d.str(&p.Name),
		"id":            d.str(&p.ID),
		"address":       d.str(&p.Address),
		"max_send_rate": d.rate(&p.MaxSendRate),
		"max_recv_rate": d.rate(&p.MaxRecvRate),
		"compression":   d.str((*string)(&p.Compression)),
	}, line)
}

func (d *decoder) folder(v *yaml.Node, path string, line int, f *Folder, w *watchOverride) error {
	return d.mapping(v, path, map[string]handler{
		"id":     d.str(&f.ID),
		"path":   d.str(&f.Path),
		"mode":   d.str((*string)(&f.Mode)),
		"peers":  d.strs(&f.Peers),
		"ignore": d.strs(&f.Ignore),
		"max_delete": func(v *yaml.Node, path string, line int) error {
			var s string
			if err := d.str(&s)(v, path, line); err != nil {
				return err
			}
			pct, ok := strings.CutSuffix(strings.TrimSpace(s), "%")
			x, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
			if !ok || err != nil || !(x > 0 && x <= 100) {
				return d.errorf(line, path, "%s: want a share of the folder's files like 50%%, above 0%% and at most 100%%, not %q", path, s)
			}
			f.MaxDelete = x / 100
			return nil
		},
		"watch": func(v *yaml.Node, path string, line int) error {
			return d.watch(v, path, line, w)
		},
	}, line)
}

// watch decodes a watch: block; a key the block sets gets a non-nil
// pointer in w (the top-level block passes pointers to be filled in).
func (d *decoder) watch(v *yaml.Node, path string, line int, w *watchOverride) error {
	dur := func(p **time.Duration) handler {
		return func(v *yaml.Node, path string, line int) error {
			var s string
			if err := d.str(&s)(v, path, line); err != nil || s == "" {
				return err
			}
			x, err := span.ParseElapsed(s)
			if err != nil {
				return d.errorf(line, path, "%s: want a duration like 100ms, 30s or 1h, not %q", path, s)
			}
			if *p == nil {
				*p = new(time.Duration)
			}
			**p = x
			return nil
		}
	}
	return d.mapping(v, path, map[string]handler{
		"debounce": dur(&w.debounce),
		"rescan":   dur(&w.rescan),
	}, line)
}

func (d *decoder) repository(v *yaml.Node, path string, line int, r *Repository) error {
	return d.mapping(v, path, map[string]handler{
		"url":                d.str(&r.URL),
		"index_key":          d.str(&r.IndexKey),
		"data_recipients":    d.strs(&r.DataRecipients),
		"schedule":           d.str(&r.Schedule),
		"skip_unchanged":     d.boolean(&r.SkipUnchanged),
		"storage_class":      d.str(&r.StorageClass),
		"sse":                d.str(&r.SSE),
		"sse_kms_key_id":     d.str(&r.SSEKMSKeyID),
		"object_lock_mode":   d.str(&r.ObjectLockMode),
		"object_lock_retain": d.duration(&r.ObjectLockRetain, 0, "above 0, like 30d or 720h"),
		"copies": func(v *yaml.Node, path string, line int) error {
			r.Copies = nil
			return d.list(v, path, line, func(item *yaml.Node, path string, line int) error {
				r.Copies = append(r.Copies, CopyTarget{})
				return d.copyTarget(item, path, line, &r.Copies[len(r.Copies)-1])
			})
		},
		"drill_every": d.duration(&r.DrillEvery, -1, "of 0 or more, like 8d or 36h (0: no drill alert)"),
		"retention": func(v *yaml.Node, path string, line int) error {
			t := &r.Retention
			return d.mapping(v, path, map[string]handler{
				"keep_last":           d.int(&t.KeepLast),
				"keep_hourly":         d.int(&t.KeepHourly),
				"keep_daily":          d.int(&t.KeepDaily),
				"keep_weekly":         d.int(&t.KeepWeekly),
				"keep_monthly":        d.int(&t.KeepMonthly),
				"keep_yearly":         d.int(&t.KeepYearly),
				"keep_within":         d.calendar(&t.KeepWithin),
				"keep_within_hourly":  d.calendar(&t.KeepWithinHourly),
				"keep_within_daily":   d.calendar(&t.KeepWithinDaily),
				"keep_within_weekly":  d.calendar(&t.KeepWithinWeekly),
				"keep_within_monthly": d.calendar(&t.KeepWithinMonthly),
				"keep_within_yearly":  d.calendar(&t.KeepWithinYearly),
				"keep_tags":           d.strs(&t.KeepTags),
				"group_by": func(v *yaml.Node, path string, line int) error {
					if isNull(resolve(v)) {
						return nil // host,paths
					}
					t.GroupBy = new(string)
					return d.str(t.GroupBy)(v, path, line)
				},
				"tags":  d.strs(&t.Tags),
				"paths": d.strs(&t.Paths),
			}, line)
		},
	}, line)
}

// mapping walks the mapping v at path (its key on line), in file order,
// and calls the handler of each key. A key without a handler, a key seen
// twice, or v not being a mapping is an error. A null v is an empty
// mapping.
func (d *decoder) mapping(v *yaml.Node, path string, fields map[string]handler, line int) error {
	v = resolve(v)
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		return d.errorf(line, path, "%s: want a mapping of keys, not %s", where(path), describe(v))
	}
	seen := make(map[string]int, len(v.Content)/2)
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := resolve(v.Content[i]), v.Content[i+1]
		if k.Kind != yaml.ScalarNode || isNull(k) {
			return d.errorf(k.Line, path, "want a plain key %s, not %s", in(path), describe(k))
		}
		key := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			return d.errorf(k.Line, key, "duplicate key %q %s (first at line %d)", k.Value, in(path), first)
		}
		seen[k.Value] = k.Line
		fn, ok := fields[k.Value]
		if !ok {
			return d.errorf(k.Line, key, "unknown key %q %s", k.Value, in(path))
		}
		d.lines[key] = k.Line
		if err := fn(val, key, k.Line); err != nil {
			return err
		}
	}
	return nil
}

// list calls fn with each item of the sequence v at path, its own path
// being path[i]. A null v is an empty list.
func (d *decoder) list(v *yaml.Node, path string, line int, fn handler) error {
	v = resolve(v)
	if isNull(v) {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		return d.errorf(line, path, "%s: want a list, not %s", path, describe(v))
	}
	for i, item := range v.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = item.Line
		if err := fn(item, p, item.Line); err != nil {
			return err
		}
	}
	return nil
}

// str decodes a scalar into *s. Numbers are taken as written ("01" stays
// "01"); booleans, lists and mappings are errors; null leaves *s empty.
func (d *decoder) str(s *string) handler {
	return func(v *yaml.Node, path string, line int) error {
		v = resolve(v)
		if isNull(v) {
			*s = ""
			return nil
		}
		if v.Kind != yaml.ScalarNode {
			return d.errorf(line, path, "%s: want a string, not %s", path, describe(v))
		}
		switch v.ShortTag() {
		case "!!str", "!!int", "!!float", "!!timestamp":
			*s = v.Value
			return nil
		}
		return d.errorf(line, path, "%s: want a string, not %s (quote it)", path, describe(v))
	}
}

// strs decodes a list of strings; a single string is not a list.
func (d *decoder) strs(out *[]string) handler {
	return func(v *yaml.Node, path string, line int) error {
		*out = nil
		return d.list(v, path, line, func(item *yaml.Node, path string, line int) error {
			var s string
			if err := d.str(&s)(item, path, line); err != nil {
				return err
			}
			*out = append(*out, s)
			return nil
		})
	}
}

// int decodes an integer scalar; null leaves *n zero.
func (d *decoder) int(n *int) handler {
	return func(v *yaml.Node, path string, line int) error {
		v = resolve(v)
		if isNull(v) {
			*n = 0
			return nil
		}
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" {
			return d.errorf(line, path, "%s: want an integer, not %s", path, describe(v))
		}
		if err := v.Decode(n); err != nil {
			return d.errorf(line, path, "%s: want an integer, not %s (out of range)", path, describe(v))
		}
		return nil
	}
}

func (d *decoder) empty() *Error {
	return &Error{File: d.file, Msg: "empty file: want at least a node: section"}
}

func (d *decoder) errorf(line int, key, format string, args ...any) *Error {
	return &Error{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// syntaxError turns an error of the YAML parser into an *Error, with its
// line when the parser gave one.
func (d *decoder) syntaxError(err error) *Error {
	msg := err.Error()
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil && n > 0 {
			return &Error{File: d.file, Line: n, Msg: "YAML: " + m[2], Err: err}
		}
	}
	msg = strings.ReplaceAll(strings.TrimPrefix(msg, "yaml: "), "\n", "; ")
	return &Error{File: d.file, Msg: "YAML: " + msg, Err: err}
}

// resolve follows an alias (*name) to the node its anchor names.
func resolve(v *yaml.Node) *yaml.Node {
	for i := 0; v.Kind == yaml.AliasNode && v.Alias != nil && i < 100; i++ {
		v = v.Alias
	}
	return v
}

func isNull(v *yaml.Node) bool {
	return v.Kind == 0 || v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null"
}

// describe names what v is, for "want X, not Y" messages.
func describe(v *yaml.Node) string {
	switch v.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		s := v.Value
		if len(s) > 40 {
			s = s[:40] + "…"
		}
		kind := map[string]string{"!!bool": "boolean ", "!!int": "integer ", "!!float": "number ", "!!str": "", "!!null": ""}[v.ShortTag()]
		return fmt.Sprintf("%s%q", kind, s)
	}
	return "a " + v.ShortTag() + " node"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// in and where name the mapping at path in a message.
func in(path string) string {
	if path == "" {
		return "at top level"
	}
	return "in " + path
}

func where(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}
