// Package config reads the YAML configuration of a syncd node (DESIGN.md
// §11) into plain structs, strictly: an unknown key, a duplicate key, a
// value of the wrong type or a value that cannot work is an [*Error] that
// names the key and its line. It also holds [Matcher], the gitignore-style
// matcher of a folder's ignore patterns, shared by the watcher and the
// indexer.
//
// A complete file:
//
//	node:
//	  name: web1
//	  state_dir: /var/lib/syncd
//	  listen: 0.0.0.0:7410
//	  http: 127.0.0.1:7411
//	  http_token_file: /etc/syncd/http.token  # required when http is not loopback
//	  max_lag: 30s
//	  max_send_rate: 50MB/s          # optional: all peers together; max_recv_rate too
//	peers:
//	  - name: web2
//	    id: <node ID printed by `syncd id` on web2>
//	    address: 10.0.0.2:7410
//	    max_recv_rate: 100Mbit/s     # optional: this peer alone; max_send_rate too
//	    compression: auto            # auto | always | never
//	folders:
//	  - id: www
//	    path: /var/www/html
//	    mode: send-receive
//	    peers: [web2]
//	    ignore: ["wp-content/cache/**", "*.tmp"]
//	    watch: {debounce: 250ms}     # optional, overrides the top-level watch
//	repository:
//	  url: s3://backups/web
//	  index_key: /etc/syncd/index.key
//	  data_recipients: [age1...]
//	  schedule: "17 */6 * * *"
//	  skip_unchanged: true          # a scheduled snapshot of an unchanged tree is skipped (default)
//	  retention: {keep_last: 4, keep_daily: 14, keep_weekly: 8, keep_monthly: 12}
//	  drill_every: 192h             # "drill overdue" when no restore drill succeeded in 8 days
//	  copies:                       # each snapshot copied there too (syncd init --copy-from)
//	    - s3://backups-eu/web       # same store and credentials as url
//	    - url: s3://offsite/web     # another store: its own settings (docs/S3.md)
//	      endpoint: https://s3.eu-central-1.wasabisys.com
//	      region: eu-central-1
//	      credentials_file: /etc/syncd/offsite.credentials  # mode 0600, ~/.aws/credentials format
//	      storage_class: STANDARD_IA
//	watch:
//	  debounce: 100ms
//	  rescan: 1h
//	alerts:
//	  webhooks: [{url: https://hooks.example/syncd, token_file: /etc/syncd/hook.token, timeout: 10s}]
//	  repeat: 4h
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/syncd/syncd/internal/span"
)

// Defaults applied by [Parse] to keys the file leaves out.
const (
	DefaultListen    = "0.0.0.0:7410"         // node.listen
	DefaultHTTP      = "127.0.0.1:7411"       // node.http
	DefaultMode      = SendReceive            // folders[].mode
	DefaultDebounce  = 100 * time.Millisecond // watch.debounce
	DefaultRescan    = time.Hour              // watch.rescan
	DefaultMaxDelete = 0.5                    // folders[].max_delete, "50%"
	DefaultMaxLag    = 30 * time.Second       // node.max_lag
	DefaultRepeat    = 4 * time.Hour          // alerts.repeat
	DefaultTimeout   = 10 * time.Second       // alerts.webhooks[].timeout
)

// MinRepeat is the shortest alerts.repeat accepted: a shorter one turns a
// lasting condition into a flood.
const MinRepeat = time.Minute

// MinHeldDeletes is the number of deleted files below which a batch is
// never held back by max_delete: in a folder of a few files, deleting two
// of three is an edit, not a vanished disk.
const MinHeldDeletes = 10

// Config is one node's configuration. [Parse] fills in the defaults, so
// every field holds the value the daemon runs with.
type Config struct {
	Node    Node
	Peers   []Peer
	Folders []Folder
	// Repository is nil when the file has no repository section: no
	// off-site snapshots.
	Repository *Repository
	// Watch holds the watcher tunables for every folder (the top-level
	// watch: block); a folder may override them in its own watch: block,
	// and Folder.Watch holds the values that apply to it.
	Watch Watch
	// Alerts is the alerts: section; without webhooks no alert is sent.
	Alerts Alerts
}

// Node is the node: section, about this node itself.
type Node struct {
	Name     string // node.name: shown in logs, status and conflict file names
	StateDir string // node.state_dir: absolute, cleaned; the local index, TLS identity, caches
	Listen   string // node.listen: host:port of the peer protocol (mutual TLS)
	HTTP     string // node.http: host:port of /metrics, /healthz, /readyz, /status
	// HTTPTokenFile (node.http_token_file) is the absolute path of the file
	// holding the bearer token of node.http; required when HTTP is not a
	// loopback address. Empty when left out.
	HTTPTokenFile string
	// MaxLag (node.max_lag, default 30s) is how far this node may be
	// behind a connected peer before /readyz answers 503.
	MaxLag time.Duration
	// MaxSendRate and MaxRecvRate (node.max_send_rate, node.max_recv_rate;
	// see [ParseRate]) bound the bytes per second of the peer protocol
	// that this node sends to and receives from all its peers together,
	// as counted on the wire; 0 when left out: no limit.
	MaxSendRate, MaxRecvRate int64
}

// Peer is one entry of peers:, another node this one mirrors with.
type Peer struct {
	Name    string // name: unique among peers, used in folders[].peers
	ID      string // id: the node ID `syncd id` prints on that peer
	Address string // address: host:port of its peer protocol
	// MaxSendRate and MaxRecvRate (max_send_rate, max_recv_rate) bound
	// the bytes per second sent to and received from this peer, within
	// the node's own limits; 0 when left out: no limit.
	MaxSendRate, MaxRecvRate int64
	// Compression (compression, default auto) says whether file content
	// travels zstd-compressed between this node and the peer.
	Compression Compression
}

// Compression is a peer's compression: setting.
type Compression string

// The compression settings (PROTOCOL.md, "Compression").
const (
	CompressAuto   Compression = "auto"   // compressed while that brings the blocks faster
	CompressAlways Compression = "always" // compressed (each block that shrinks)
	CompressNever  Compression = "never"  // raw: no compression CPU on either side
)

// Mode says in which directions a folder's changes travel.
type Mode string

// The folder modes of DESIGN.md §5.
const (
	SendOnly    Mode = "send-only"    // a primary: its changes go to peers, theirs are not applied here
	ReceiveOnly Mode = "receive-only" // a replica: peers' changes are applied here, its own are not sent
	SendReceive Mode = "send-receive" // any node may change the content
)

// Folder is one entry of folders:, a content tree mirrored and snapshotted.
type Folder struct {
	ID     string   // id: unique among folders, the same on every node
	Path   string   // path: absolute, cleaned; never inside another folder or the state dir
	Mode   Mode     // mode: DefaultMode when left out
	Peers  []string // peers: names from Config.Peers
	Ignore []string // ignore: gitignore patterns, one .gitignore line each, see [Matcher]
	// Watch is the top-level Config.Watch with this folder's own watch:
	// block, if any, applied over it.
	Watch Watch
	// MaxDelete (max_delete, "50%" by default) is the share of the
	// folder's files local changes may delete within a minute. A batch
	// that would go over it, once at least [MinHeldDeletes] files are
	// deleted, keeps its deletes back (the folder is failed, the peers
	// keep their copies) until an operator runs `syncd confirm-deletes
	// FOLDER`. 1 ("100%") never holds a batch back.
	MaxDelete float64
}

// Watch holds the watcher tunables. The file writes them as Go durations
// ("100ms", "1h"), in a top-level watch: block for every folder and
// optionally in a folder's own watch: block to override either value.
type Watch struct {
	// Debounce is how long the watcher waits after a file-system event for
	// more before it hands the batch on (watch.debounce, default 100ms).
	Debounce time.Duration
	// Rescan is the period of a full rescan that catches what events
	// missed (watch.rescan, default 1h); 0 disables it.
	Rescan time.Duration
}

// Repository is the optional repository: section, for off-site snapshots.
type Repository struct {
	URL      string // url: s3://BUCKET[/PREFIX] or an absolute directory
	IndexKey string // index_key: absolute path of the index identity file
	// DataRecipients (data_recipients) are the age recipients file contents
	// are encrypted to. When empty, the recipients come from the
	// repository's own keys/ objects.
	DataRecipients []string
	// Schedule (schedule) is a standard 5-field cron expression (or a
	// descriptor like "@daily") for snapshots; empty means on demand only.
	Schedule string
	// SkipUnchanged (skip_unchanged, default true) makes a scheduled
	// snapshot write nothing when nothing changed since the last one this
	// node wrote (the same tree: names, metadata and contents); the log
	// and the status say it was skipped. On-demand snapshots (syncd
	// snapshot --config) are always written.
	SkipUnchanged bool
	Retention     Retention // retention: what forget keeps
	// S3Upload is what each upload to an s3:// repository asks for
	// (storage_class, sse, …); a copy target has its own.
	S3Upload
	// Copies (copies) are copy targets (syncd init --copy-from): the
	// daemon copies each snapshot to every one after writing it (syncd
	// copy). Each entry is a URL, or a mapping with the URL and the
	// target's own S3 settings ([CopyTarget]).
	Copies []CopyTarget
	// DrillEvery (drill_every) is how often a `restore drill` of this
	// node's snapshots must succeed: the "drill overdue" alert fires when
	// none has for longer (docs/ALERTS.md). 0, or left out: no such alert.
	DrillEvery time.Duration
}

// Retention is the retention: block, with the meaning of restic's forget
// options of the same names (docs/RETENTION.md). A zero field does not
// keep anything by itself. The daemon applies it to its own node's
// snapshots only.
type Retention struct {
	KeepLast    int // keep_last
	KeepHourly  int // keep_hourly
	KeepDaily   int // keep_daily
	KeepWeekly  int // keep_weekly
	KeepMonthly int // keep_monthly
	KeepYearly  int // keep_yearly
	// KeepWithin (keep_within) keeps every snapshot younger than this span
	// before the newest one, restic's "1y2m3d4h" ([span.ParseCalendar]:
	// m is months). Zero keeps nothing by age.
	KeepWithin span.Calendar
	// KeepWithinHourly (keep_within_hourly; daily, weekly, monthly,
	// yearly likewise) keeps the newest snapshot of each hour (day, …)
	// among those younger than this span before the newest one.
	KeepWithinHourly, KeepWithinDaily, KeepWithinWeekly, KeepWithinMonthly, KeepWithinYearly span.Calendar
	// KeepTags (keep_tags) keeps the snapshots with any of these tags.
	KeepTags []string
	// GroupBy (group_by) is restic's --group-by: host, paths and/or tags,
	// comma-separated, "" for one group; nil when left out: host,paths.
	GroupBy *string
	// Tags (tags) limits the policy to the snapshots with any of these
	// tags, as repeated restic --tag flags of one tag each; empty: all.
	Tags []string
	// Paths (paths) limits the policy to the snapshots that include every
	// one of these absolute paths (restic's --path); empty: all.
	Paths []string
}

// Alerts is the alerts: section: where alerts go (docs/ALERTS.md).
type Alerts struct {
	Webhooks []Webhook // webhooks: every alert is POSTed to each
	// Repeat (repeat, default 4h, at least [MinRepeat]) is how often an
	// alert that is still active is sent again.
	Repeat time.Duration
}

// Webhook is one entry of alerts.webhooks.
type Webhook struct {
	URL string // url: http:// or https:// with a host
	// TokenFile (token_file) is the absolute path of a file holding the
	// bearer token sent with each request; empty sends none.
	TokenFile string
	// Timeout (timeout, default 10s) bounds each request.
	Timeout time.Duration
}

// Error is a configuration error. Its message is one line: "FILE:LINE:
// MSG" when it is about a place in the file, "config FILE: MSG" when it is
// about the whole file (missing, unreadable, empty).
type Error struct {
	File string // the name given to Load or Parse
	Line int    // 1-based line of the key at fault; 0 for the whole file
	Key  string // dotted path of the key at fault, like "folders[1].path"; may be empty
	Msg  string // what is wrong, starting with the key when there is one
	Err  error  // the underlying error, if any (fs.ErrNotExist, a cron error, …)
}

// Error returns the message, on one line.
func (e *Error) Error() string {
	var s string
	if e.Line == 0 {
		s = fmt.Sprintf("config %s: %s", e.File, e.Msg)
	} else {
		s = fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	// Values quoted from the file or from a library's message may hold a
	// line break; the message stays on one line.
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Load reads and parses the configuration file at path; see [Parse]. A
// missing file is an error matching fs.ErrNotExist, "config PATH: no such
// file"; a file over [MaxFileSize] is refused before it is parsed.
func Load(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// LoadNode reads the configuration at path like [Load], but checks only
// its node section (and that every key is known): what `syncd id` needs,
// before the peers' IDs are filled in.
func LoadNode(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	d := &decoder{file: path, lines: map[string]int{}}
	c, err := d.decode(data)
	if err != nil {
		return nil, err
	}
	applyDefaults(c)
	v := &validator{file: path, lines: d.lines}
	if err := v.node(c); err != nil {
		return nil, err
	}
	return c, nil
}

// readFile reads the file at path, at most one byte past MaxFileSize: the
// decoder refuses a longer file before parsing it.
func readFile(path string) ([]byte, error) {
	data, err := readAtMost(path, MaxFileSize+1)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			msg = "no such file"
		case errors.As(err, &pe):
			msg = pe.Err.Error()
		}
		return nil, &Error{File: path, Msg: msg, Err: err}
	}
	return data, nil
}

// Parse parses data, the text of a configuration file that error messages
// call name. It decodes strictly, applies the defaults and validates every
// value; the error, an [*Error], is the first problem found.
func Parse(data []byte, name string) (*Config, error) {
	d := &decoder{file: name, lines: map[string]int{}}
	c, err := d.decode(data)
	if err != nil {
		return nil, err
	}
	applyDefaults(c)
	v := &validator{file: name, lines: d.lines}
	if err := v.validate(c); err != nil {
		return nil, err
	}
	return c, nil
}

// applyDefaults fills in what the file left out. Folder watch values were
// merged by the decoder, which knows which ones the file set.
func applyDefaults(c *Config) {
	if c.Node.Listen == "" {
		c.Node.Listen = DefaultListen
	}
	if c.Node.HTTP == "" {
		c.Node.HTTP = DefaultHTTP
	}
	if c.Node.MaxLag == 0 {
		c.Node.MaxLag = DefaultMaxLag
	}
	if c.Alerts.Repeat == 0 {
		c.Alerts.Repeat = DefaultRepeat
	}
	for i := range c.Alerts.Webhooks {
		if c.Alerts.Webhooks[i].Timeout == 0 {
			c.Alerts.Webhooks[i].Timeout = DefaultTimeout
		}
	}
	for i := range c.Folders {
		if c.Folders[i].Mode == "" {
			c.Folders[i].Mode = DefaultMode
		}
		if c.Folders[i].MaxDelete == 0 {
			c.Folders[i].MaxDelete = DefaultMaxDelete
		}
	}
}
