package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/span"
)

// Two node IDs of the shape `syncd id` prints.
const (
	idX = "AAAAAAA-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHH"
	idY = "ZZZZZZZ-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHH"
)

// The sample of deploy/ is DESIGN.md §11 with comments; it loads once its
// placeholder peer ID is filled in, and says what is wrong before.
func TestLoadSample(t *testing.T) {
	data, err := os.ReadFile("../deploy/syncd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const placeholder = "<node ID printed by `syncd id` on web2>"
	if _, err := Parse(data, "syncd.yaml"); err == nil || !strings.Contains(err.Error(), "peers[0].id: \"<node ID") {
		t.Errorf("the placeholder ID: %v", err)
	}
	c, err := Parse([]byte(strings.Replace(string(data), placeholder, idX, 1)), "syncd.yaml")
	if err != nil {
		t.Fatalf("Load(sample): %v", err)
	}
	want := &Config{
		Node: Node{Name: "web1", StateDir: "/var/lib/syncd", Listen: "0.0.0.0:7410", HTTP: "127.0.0.1:7411", MaxLag: 30 * time.Second},
		Peers: []Peer{{
			Name: "web2", ID: idX, Address: "10.0.0.2:7410", Compression: CompressAuto,
		}},
		Folders: []Folder{{
			ID: "www", Path: "/var/www/html", Mode: SendReceive, Peers: []string{"web2"},
			Ignore:    []string{"wp-content/cache/**", "*.tmp"},
			Watch:     Watch{Debounce: 100 * time.Millisecond, Rescan: time.Hour},
			MaxDelete: 0.5,
		}},
		Repository: &Repository{
			URL: "s3://backups/web", IndexKey: "/etc/syncd/index.key",
			DataRecipients: []string{"age1..."}, Schedule: "17 */6 * * *", SkipUnchanged: true,
			Retention:  Retention{KeepLast: 4, KeepDaily: 14, KeepWeekly: 8, KeepMonthly: 12},
			DrillEvery: 192 * time.Hour,
		},
		Watch: Watch{Debounce: 100 * time.Millisecond, Rescan: time.Hour},
		Alerts: Alerts{
			Webhooks: []Webhook{{URL: "https://hooks.example/syncd", TokenFile: "/etc/syncd/hook.token", Timeout: 10 * time.Second}},
			Repeat:   4 * time.Hour,
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("sample:\ngot  %+v\nwant %+v", c, want)
		if c.Repository != nil {
			t.Errorf("repository:\ngot  %+v\nwant %+v", *c.Repository, *want.Repository)
		}
	}
}

const minimal = "node:\n  name: web1\n  state_dir: /var/lib/syncd\n"

func TestDefaults(t *testing.T) {
	tests := []struct {
		name, yaml string
		check      func(c *Config) (got, want any)
	}{
		{"listen", minimal, func(c *Config) (any, any) { return c.Node.Listen, DefaultListen }},
		{"http", minimal, func(c *Config) (any, any) { return c.Node.HTTP, DefaultHTTP }},
		{"no repository", minimal, func(c *Config) (any, any) { return c.Repository == nil, true }},
		{"watch", minimal, func(c *Config) (any, any) {
			return c.Watch, Watch{Debounce: 100 * time.Millisecond, Rescan: time.Hour}
		}},
		{"mode", minimal + "folders:\n  - {id: www, path: /srv/www}\n", func(c *Config) (any, any) {
			return c.Folders[0].Mode, SendReceive
		}},
		{"folder watch inherits", minimal + "folders:\n  - {id: www, path: /srv/www}\nwatch: {rescan: 10m}\n", func(c *Config) (any, any) {
			return c.Folders[0].Watch, Watch{Debounce: 100 * time.Millisecond, Rescan: 10 * time.Minute}
		}},
		{"folder watch overrides one value", minimal + "folders:\n  - id: www\n    path: /srv/www\n    watch: {debounce: 1s}\nwatch: {debounce: 50ms, rescan: 0}\n", func(c *Config) (any, any) {
			return c.Folders[0].Watch, Watch{Debounce: time.Second, Rescan: 0}
		}},
		{"paths cleaned", "node:\n  name: web1\n  state_dir: /var/lib//syncd/\nfolders:\n  - {id: www, path: /srv/www/./html/}\n", func(c *Config) (any, any) {
			return c.Node.StateDir + " " + c.Folders[0].Path, "/var/lib/syncd /srv/www/html"
		}},
		{"max_delete default", minimal + "folders:\n  - {id: www, path: /srv/www}\n", func(c *Config) (any, any) { return c.Folders[0].MaxDelete, 0.5 }},
		{"max_delete", minimal + "folders:\n  - {id: www, path: /srv/www, max_delete: 100%}\n  - {id: up, path: /srv/up, max_delete: '12.5 %'}\n", func(c *Config) (any, any) {
			return [2]float64{c.Folders[0].MaxDelete, c.Folders[1].MaxDelete}, [2]float64{1, 0.125}
		}},
		{"empty repository is none", minimal + "repository:\n", func(c *Config) (any, any) { return c.Repository == nil, true }},
		{"empty data_recipients", minimal + "repository: {url: /srv/backup, index_key: /etc/syncd/index.key, data_recipients: []}\n", func(c *Config) (any, any) {
			return len(c.Repository.DataRecipients), 0
		}},
		{"numbers as strings", "node: {name: 01, state_dir: /s}\nfolders: [{id: 2024, path: /w}]\n", func(c *Config) (any, any) {
			return c.Node.Name + " " + c.Folders[0].ID, "01 2024"
		}},
		{"anchors", minimal + "peers:\n  - {name: a, id: " + idX + ", address: 'h:1'}\nfolders:\n  - {id: x, path: /x, peers: &p [a], ignore: &i ['*.tmp']}\n  - {id: y, path: /y, peers: *p, ignore: *i}\n", func(c *Config) (any, any) {
			return c.Folders[1].Peers[0] + " " + c.Folders[1].Ignore[0], "a *.tmp"
		}},
		{"max_lag default", minimal, func(c *Config) (any, any) { return c.Node.MaxLag, DefaultMaxLag }},
		{"drill_every", minimal + "repository: {url: /srv/backup, index_key: /k, drill_every: 192h}\n", func(c *Config) (any, any) {
			return c.Repository.DrillEvery, 8 * 24 * time.Hour
		}},
		{"drill_every zero", minimal + "repository: {url: /srv/backup, index_key: /k, drill_every: 0s}\n", func(c *Config) (any, any) {
			return c.Repository.DrillEvery, time.Duration(0)
		}},
		{"drill_every left out", minimal + "repository: {url: /srv/backup, index_key: /k}\n", func(c *Config) (any, any) {
			return c.Repository.DrillEvery, time.Duration(0)
		}},
		{"max_lag", minimal + "  max_lag: 2m30s\n", func(c *Config) (any, any) { return c.Node.MaxLag, 150 * time.Second }},
		{"no alerts", minimal, func(c *Config) (any, any) { return c.Alerts, Alerts{Repeat: 4 * time.Hour} }},
		{"alerts defaults", minimal + "alerts:\n  webhooks: [{url: 'http://h:8080/x?k=v'}]\n", func(c *Config) (any, any) {
			return c.Alerts, Alerts{Webhooks: []Webhook{{URL: "http://h:8080/x?k=v", Timeout: 10 * time.Second}}, Repeat: 4 * time.Hour}
		}},
		{"alerts", minimal + "alerts:\n  webhooks:\n    - {url: 'https://a/1', token_file: /etc//t, timeout: 500ms}\n    - url: HTTPS://b\n  repeat: 1m\n", func(c *Config) (any, any) {
			return c.Alerts, Alerts{Webhooks: []Webhook{{URL: "https://a/1", TokenFile: "/etc/t", Timeout: 500 * time.Millisecond}, {URL: "HTTPS://b", Timeout: 10 * time.Second}}, Repeat: time.Minute}
		}},
		{"loopback http needs no token", minimal + "  http: 'localhost:7411'\n", func(c *Config) (any, any) { return c.Node.HTTPTokenFile, "" }},
		{"IPv6 loopback http needs no token", minimal + "  http: '[::1]:7411'\n", func(c *Config) (any, any) { return c.Node.HTTPTokenFile, "" }},
		{"http_token_file", minimal + "  http: '10.0.0.1:7411'\n  http_token_file: /etc/syncd/./http.token\n", func(c *Config) (any, any) {
			return c.Node.HTTPTokenFile, "/etc/syncd/http.token"
		}},
		{"retention", minimal + "repository:\n  url: /srv/b\n  index_key: /k\n  retention: {keep_hourly: 24, keep_yearly: 3, keep_within: 1d12h, keep_tags: [release]}\n", func(c *Config) (any, any) {
			return c.Repository.Retention, Retention{KeepHourly: 24, KeepYearly: 3, KeepWithin: span.Calendar{Days: 1, Hours: 12}, KeepTags: []string{"release"}}
		}},
		{"retention like restic", minimal + "repository:\n  url: /srv/b\n  index_key: /k\n  retention:\n    keep_within_hourly: 2d\n    keep_within_daily: 1m\n    keep_within_weekly: 6m\n    keep_within_monthly: 2y\n    keep_within_yearly: 10y\n    keep_within: ~\n    group_by: host,tags\n    tags: [nightly, manual]\n    paths: [/srv/www/, /srv/data]\n", func(c *Config) (any, any) {
			by := "host,tags"
			return c.Repository.Retention, Retention{KeepWithinHourly: span.Calendar{Days: 2}, KeepWithinDaily: span.Calendar{Months: 1},
				KeepWithinWeekly: span.Calendar{Months: 6}, KeepWithinMonthly: span.Calendar{Years: 2}, KeepWithinYearly: span.Calendar{Years: 10},
				GroupBy: &by, Tags: []string{"nightly", "manual"}, Paths: []string{"/srv/www", "/srv/data"}}
		}},
		{"group_by empty: one group", minimal + "repository: {url: /srv/b, index_key: /k, retention: {keep_last: 1, group_by: ''}}\n", func(c *Config) (any, any) {
			return *c.Repository.Retention.GroupBy, ""
		}},
		{"group_by left out", minimal + "repository: {url: /srv/b, index_key: /k, retention: {keep_last: 1}}\n", func(c *Config) (any, any) {
			return c.Repository.Retention.GroupBy == nil, true
		}},
		{"drill_every in days", minimal + "repository: {url: /srv/backup, index_key: /k, drill_every: 8d}\n", func(c *Config) (any, any) {
			return c.Repository.DrillEvery, 8 * 24 * time.Hour
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "t.yaml")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got, want := tt.check(c); !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	folder := "peers:\n  - {name: web2, id: " + idX + ", address: '10.0.0.2:7410'}\nfolders:\n  - id: www\n    path: /var/www\n"
	repo := "repository:\n  url: s3://b/web\n  index_key: /etc/syncd/index.key\n"
	tests := []struct{ name, yaml, want string }{
		// unknown keys at every depth
		{"unknown top-level key", minimal + "nodes: {}\n", `t.yaml:4: unknown key "nodes" at top level`},
		{"unknown key in node", minimal + "  lsiten: ':1'\n", `t.yaml:4: unknown key "lsiten" in node`},
		{"unknown key in peer", minimal + "peers:\n  - name: web2\n    adress: x\n", `t.yaml:6: unknown key "adress" in peers[0]`},
		{"unknown key in folder", minimal + folder + "    mod: send-only\n", `t.yaml:9: unknown key "mod" in folders[0]`},
		{"unknown key in folder watch", minimal + folder + "    watch: {debounce: 1s, rescn: 1h}\n", `t.yaml:9: unknown key "rescn" in folders[0].watch`},
		{"unknown key in retention", minimal + repo + "  retention: {keep_last: 1, keep_minutely: 5}\n", `t.yaml:7: unknown key "keep_minutely" in repository.retention`},
		// wrong types
		{"node not a mapping", "node: web1\n", `t.yaml:1: node: want a mapping of keys, not "web1"`},
		{"listen a list", minimal + "  listen: [a, b]\n", `t.yaml:4: node.listen: want a string, not a list`},
		{"name a boolean", "node:\n  name: true\n", `t.yaml:2: node.name: want a string, not boolean "true" (quote it)`},
		{"folders a mapping", minimal + "folders: {id: www}\n", `t.yaml:4: folders: want a list, not a mapping`},
		{"ignore a string", minimal + folder + "    ignore: '*.tmp'\n", `t.yaml:9: folders[0].ignore: want a list, not "*.tmp"`},
		{"keep_last a string", minimal + repo + "  retention: {keep_last: four}\n", `t.yaml:7: repository.retention.keep_last: want an integer, not "four"`},
		{"keep_last too large", minimal + repo + "  retention: {keep_last: 99999999999999999999}\n", `t.yaml:7: repository.retention.keep_last: want an integer, not number "99999999999999999999"`},
		{"top level a list", "- node\n", `t.yaml:1: want a mapping of keys (node:, peers:, …) at top level`},
		{"key a list", minimal + "[a]: 1\n", `t.yaml:4: want a plain key at top level, not a list`},
		// duplicates
		{"duplicate key", "node:\n  name: web1\n  name: web2\n", `t.yaml:3: duplicate key "name" in node (first at line 2)`},
		{"duplicate section", minimal + "node: {}\n", `t.yaml:4: duplicate key "node" at top level (first at line 1)`},
		{"duplicate peer", minimal + "peers:\n  - {name: web2, id: " + idX + ", address: 'h:1'}\n  - {name: web2, id: " + idY + ", address: 'h:1'}\n", `t.yaml:6: peers[1].name: duplicate peer name "web2" (first at line 5)`},
		{"duplicate folder id", minimal + folder + "  - {id: www, path: /srv}\n", `t.yaml:9: folders[1].id: duplicate folder id "www" (first at line 7)`},
		// values
		{"no name", "node:\n  state_dir: /s\n", `t.yaml:1: node.name: required`},
		{"no node", "peers: []\n", `t.yaml:1: node.name: required`},
		{"bad name", "node:\n  name: web 1\n", `t.yaml:2: node.name: "web 1" is not a valid name (letters, digits, '.', '_' and '-' only)`},
		{"relative state_dir", "node:\n  name: web1\n  state_dir: var/lib/syncd\n", `t.yaml:3: node.state_dir: want an absolute path, not "var/lib/syncd"`},
		{"bad listen", minimal + "  listen: 7410\n", `t.yaml:4: node.listen: want host:port, not "7410"`},
		{"bad http port", minimal + "  http: 'localhost:http'\n", `t.yaml:4: node.http: want host:port with a port number from 1 to 65535, not "localhost:http"`},
		{"peer without host", minimal + "peers:\n  - {name: web2, id: " + idX + ", address: ':7410'}\n", `t.yaml:5: peers[0].address: want host:port, not ":7410" (missing host)`},
		{"bad peer id", minimal + "peers:\n  - {name: web2, id: NOTANID, address: 'h:1'}\n", `t.yaml:5: peers[0].id: "NOTANID" is not a node ID: 52 base32 characters (A-Z, 2-7), dashes allowed, as ` + "`syncd id`" + ` prints on web2`},
		{"peer named as node", minimal + "peers:\n  - {name: web1, id: " + idX + ", address: 'h:1'}\n", `t.yaml:5: peers[0].name: "web1" is this node's own name (node.name)`},
		{"peer without id", minimal + "peers:\n  - name: web2\n    address: 'h:1'\n", "t.yaml:5: peers[0].id: required: the node ID `syncd id` prints on web2"},
		{"bad mode", minimal + folder + "    mode: mirror\n", `t.yaml:9: folders[0].mode: want send-only, receive-only or send-receive, not "mirror"`},
		{"relative folder path", minimal + "folders:\n  - {id: www, path: www}\n", `t.yaml:5: folders[0].path: want an absolute path, not "www"`},
		{"unknown peer in folder", minimal + folder + "    peers: [web2, web3]\n", `t.yaml:9: folders[0].peers[1]: "web3" is not a configured peer (peers[].name)`},
		{"nested folder paths", minimal + folder + "  - id: up\n    path: /var/www/uploads\n", `t.yaml:10: folders[1].path: /var/www/uploads is inside the path of folder "www", /var/www (line 8)`},
		{"folder holding another", minimal + "folders:\n  - {id: www, path: /srv/www/html}\n  - {id: all, path: /srv/www}\n", `t.yaml:6: folders[1].path: /srv/www holds the path of folder "www", /srv/www/html (line 5)`},
		{"same folder path", minimal + folder + "  - id: two\n    path: /var/www/\n", `t.yaml:10: folders[1].path: /var/www is also the path of folder "www" (line 8)`},
		{"folder holding state_dir", minimal + "folders:\n  - {id: all, path: /var/lib}\n", `t.yaml:5: folders[0].path: /var/lib overlaps node.state_dir /var/lib/syncd (line 3)`},
		{"max_delete over 100%", minimal + folder + "    max_delete: 150%\n", `t.yaml:9: folders[0].max_delete: want a share of the folder's files like 50%, above 0% and at most 100%, not "150%"`},
		{"max_delete without %", minimal + folder + "    max_delete: 50\n", `t.yaml:9: folders[0].max_delete: want a share of the folder's files like 50%, above 0% and at most 100%, not "50"`},
		{"max_delete zero", minimal + folder + "    max_delete: 0%\n", `t.yaml:9: folders[0].max_delete: want a share of the folder's files like 50%, above 0% and at most 100%, not "0%"`},
		{"max_delete a word", minimal + folder + "    max_delete: half\n", `t.yaml:9: folders[0].max_delete: want a share of the folder's files like 50%, above 0% and at most 100%, not "half"`},
		{"bad ignore pattern", minimal + folder + "    ignore: ['*.tmp', '[']\n", `t.yaml:9: folders[0].ignore[1]: bad pattern "[": unclosed "[" (write "\[" for a literal one)`},
		{"ignore pattern a comment", minimal + folder + "    ignore:\n      - '*.tmp'\n      - '#cache'\n", `t.yaml:11: folders[0].ignore[1]: bad pattern "#cache": starts with "#", a comment in .gitignore: write "\#" for a name starting with "#"`},
		{"ignore pattern a YAML comment", minimal + folder + "    ignore:\n      - a\n      - #cache\n      - b\n", `t.yaml:11: folders[0].ignore[1]: bad pattern "": empty`},
		{"ignore pattern trailing space", minimal + folder + "    ignore:\n      - a\n      - b\n      - 'cache '\n", `t.yaml:12: folders[0].ignore[2]: bad pattern "cache ": ends in a space, which .gitignore drops: remove it, or write "\ " to match one`},
		{"bad watch duration", minimal + "watch:\n  debounce: 100\n", `t.yaml:5: watch.debounce: want a duration like 100ms, 30s or 1h, not "100"`},
		{"bad cron", minimal + repo + "  schedule: '61 */6 * * *'\n", `t.yaml:7: repository.schedule: bad cron expression "61 */6 * * *" (want 5 fields: minute hour day-of-month month day-of-week): end of range (61) above maximum (59): 61`},
		{"six-field cron", minimal + repo + "  schedule: '0 17 */6 * * *'\n", `t.yaml:7: repository.schedule: bad cron expression "0 17 */6 * * *" (want 5 fields: minute hour day-of-month month day-of-week): expected exactly 5 fields, found 6: [0 17 */6 * * *]`},
		{"time zone only", minimal + repo + "  schedule: TZ=UTC\n", `t.yaml:7: repository.schedule: bad cron expression "TZ=UTC" (want 5 fields: minute hour day-of-month month day-of-week): no schedule after the time zone`},
		{"bad time zone", minimal + repo + "  schedule: \"TZ=a\\nb 0 * * * *\"\n", `t.yaml:7: repository.schedule: bad cron expression "TZ=a\nb 0 * * * *" (want 5 fields: minute hour day-of-month month day-of-week): provided bad location a\nb: unknown time zone a\nb`},
		{"negative retention", minimal + repo + "  retention:\n    keep_daily: -1\n", `t.yaml:8: repository.retention.keep_daily: want 0 or more, not -1`},
		// the retention spans: one parser (internal/span), one line naming the key
		{"keep_within unknown unit", minimal + repo + "  retention: {keep_within: 30 days}\n", `t.yaml:7: repository.retention.keep_within: "30 days": unknown unit " days" after 30: want units y, m (months), d or h, like 30d or 1y2m3d4h`},
		{"keep_within without unit", minimal + repo + "  retention: {keep_within: '30'}\n", `t.yaml:7: repository.retention.keep_within: "30": no unit after 30: want units y, m (months), d or h, like 30d or 1y2m3d4h`},
		{"keep_within negative", minimal + repo + "  retention:\n    keep_within: -3d\n", `t.yaml:8: repository.retention.keep_within: "-3d": negative values are not allowed: want units y, m (months), d or h, like 30d or 1y2m3d4h`},
		{"keep_within empty", minimal + repo + "  retention:\n    keep_within: ''\n", `t.yaml:8: repository.retention.keep_within: "": empty: want units y, m (months), d or h, like 30d or 1y2m3d4h`},
		{"keep_within overflow", minimal + repo + "  retention:\n    keep_within: 99999999999999999999d\n", `t.yaml:8: repository.retention.keep_within: "99999999999999999999d": 99999999999999999999d is too large (at most 1000000 of a unit)`},
		{"keep_within_daily unknown unit", minimal + repo + "  retention:\n    keep_within_daily: 2w\n", `t.yaml:8: repository.retention.keep_within_daily: "2w": unknown unit "w" after 2: want units y, m (months), d or h, like 30d or 1y2m3d4h`},
		{"keep_within_hourly negative", minimal + repo + "  retention:\n    keep_within_hourly: -1h\n", `t.yaml:8: repository.retention.keep_within_hourly: "-1h": negative values are not allowed: want units y, m (months), d or h, like 30d or 1y2m3d4h`},
		{"keep_within_weekly empty", minimal + repo + "  retention:\n    keep_within_weekly: ''\n", `t.yaml:8: repository.retention.keep_within_weekly: "": empty: want units y, m (months), d or h, like 30d or 1y2m3d4h`},
		{"keep_within_monthly repeated unit", minimal + repo + "  retention:\n    keep_within_monthly: 1m2m\n", `t.yaml:8: repository.retention.keep_within_monthly: "1m2m": unit "m" given twice: want units y, m (months), d or h, like 30d or 1y2m3d4h`},
		{"keep_within_yearly overflow", minimal + repo + "  retention:\n    keep_within_yearly: 2000000y\n", `t.yaml:8: repository.retention.keep_within_yearly: "2000000y": 2000000y is too large (at most 1000000 of a unit)`},
		{"group_by unknown", minimal + repo + "  retention:\n    group_by: host,node\n", `t.yaml:8: repository.retention.group_by: unknown field "node" in "host,node": want host, paths and/or tags separated by commas, or "" for one group`},
		{"retention empty tag", minimal + repo + "  retention:\n    tags: [a, '']\n", `t.yaml:8: repository.retention.tags[1]: empty tag`},
		{"retention relative path", minimal + repo + "  retention:\n    paths: [www]\n", `t.yaml:8: repository.retention.paths[0]: want an absolute path, not "www"`},
		{"negative drill_every", minimal + repo + "  drill_every: -1h\n", `t.yaml:7: repository.drill_every: want a duration of 0 or more, like 8d or 36h (0: no drill alert), not "-1h"`},
		{"drill_every in weeks", minimal + repo + "  drill_every: 1w\n", `t.yaml:7: repository.drill_every: want a duration of 0 or more, like 8d or 36h (0: no drill alert), not "1w"`},
		{"drill_every empty", minimal + repo + "  drill_every: ''\n", `t.yaml:7: repository.drill_every: want a duration of 0 or more, like 8d or 36h (0: no drill alert), not ""`},
		{"drill_every overflow", minimal + repo + "  drill_every: 999999d\n", `t.yaml:7: repository.drill_every: want a duration of 0 or more, like 8d or 36h (0: no drill alert), not "999999d"`},
		{"repository without url", minimal + "repository:\n  index_key: /k\n", `t.yaml:4: repository.url: required`},
		{"repository bad scheme", minimal + "repository:\n  url: gs://b\n  index_key: /k\n", `t.yaml:5: repository.url: unknown scheme "gs" in "gs://b" (want s3://BUCKET[/PREFIX] or an absolute directory)`},
		{"repository relative index_key", minimal + "repository:\n  url: s3://b\n  index_key: index.key\n", `t.yaml:6: repository.index_key: want an absolute path, not "index.key"`},
		// node.http access, node.max_lag
		{"public http without token", minimal + "  http: 0.0.0.0:7411\n", `t.yaml:4: node.http_token_file: required when node.http "0.0.0.0:7411" is not a loopback address`},
		{"http on every interface without token", minimal + "  http: ':7411'\n", `t.yaml:4: node.http_token_file: required when node.http ":7411" is not a loopback address`},
		{"http on a host name without token", minimal + "  http: 'web1.lan:7411'\n", `t.yaml:4: node.http_token_file: required when node.http "web1.lan:7411" is not a loopback address`},
		{"relative http_token_file", minimal + "  http_token_file: http.token\n", `t.yaml:4: node.http_token_file: want an absolute path, not "http.token"`},
		{"max_lag zero", minimal + "  max_lag: 0s\n", `t.yaml:4: node.max_lag: want a duration above 0, like 30s or 2m, not "0s"`},
		{"max_lag negative", minimal + "  max_lag: -5s\n", `t.yaml:4: node.max_lag: want a duration above 0, like 30s or 2m, not "-5s"`},
		{"max_lag without unit", minimal + "  max_lag: 30\n", `t.yaml:4: node.max_lag: want a duration above 0, like 30s or 2m, not "30"`},
		{"max_lag a list", minimal + "  max_lag: [30s]\n", `t.yaml:4: node.max_lag: want a string, not a list`},
		// alerts
		{"unknown key in alerts", minimal + "alerts:\n  repeats: 1h\n", `t.yaml:5: unknown key "repeats" in alerts`},
		{"unknown key in webhook", minimal + "alerts:\n  webhooks:\n    - url: https://h/x\n      token: abc\n", `t.yaml:7: unknown key "token" in alerts.webhooks[0]`},
		{"webhooks a mapping", minimal + "alerts:\n  webhooks: {url: https://h/x}\n", `t.yaml:5: alerts.webhooks: want a list, not a mapping`},
		{"webhook a string", minimal + "alerts:\n  webhooks: [https://h/x]\n", `t.yaml:5: alerts.webhooks[0]: want a mapping of keys, not "https://h/x"`},
		{"webhook without url", minimal + "alerts:\n  webhooks:\n    - timeout: 5s\n", `t.yaml:6: alerts.webhooks[0].url: required`},
		{"webhook url scheme", minimal + "alerts:\n  webhooks: [{url: 'ftp://h/x'}]\n", `t.yaml:5: alerts.webhooks[0].url: want http:// or https:// and a host, like https://hooks.example/syncd, not "ftp://h/x"`},
		{"webhook url without host", minimal + "alerts:\n  webhooks:\n    - url: https:///x\n", `t.yaml:6: alerts.webhooks[0].url: want http:// or https:// and a host, like https://hooks.example/syncd, not "https:///x"`},
		{"webhook url without scheme", minimal + "alerts:\n  webhooks:\n    - url: hooks.example/syncd\n", `t.yaml:6: alerts.webhooks[0].url: want http:// or https:// and a host, like https://hooks.example/syncd, not "hooks.example/syncd"`},
		{"webhook url unparsable", minimal + "alerts:\n  webhooks:\n    - url: 'http://h:port/x'\n", `t.yaml:6: alerts.webhooks[0].url: want http:// or https:// and a host, like https://hooks.example/syncd, not "http://h:port/x"`},
		{"relative token_file", minimal + "alerts:\n  webhooks:\n    - url: https://h/x\n    - url: https://h/y\n      token_file: hook.token\n", `t.yaml:8: alerts.webhooks[1].token_file: want an absolute path, not "hook.token"`},
		{"timeout zero", minimal + "alerts:\n  webhooks:\n    - {url: https://h/x, timeout: 0}\n", `t.yaml:6: alerts.webhooks[0].timeout: want a duration above 0, like 10s, not "0"`},
		{"timeout negative", minimal + "alerts:\n  webhooks:\n    - {url: https://h/x, timeout: -1s}\n", `t.yaml:6: alerts.webhooks[0].timeout: want a duration above 0, like 10s, not "-1s"`},
		{"timeout malformed", minimal + "alerts:\n  webhooks:\n    - url: https://h/x\n      timeout: 10 seconds\n", `t.yaml:7: alerts.webhooks[0].timeout: want a duration above 0, like 10s, not "10 seconds"`},
		{"repeat malformed", minimal + "alerts:\n  repeat: 4 hours\n", `t.yaml:5: alerts.repeat: want a duration of at least 1m, like 4h or 30m, not "4 hours"`},
		{"repeat below a minute", minimal + "alerts:\n  repeat: 59s\n", `t.yaml:5: alerts.repeat: want a duration of at least 1m, like 4h or 30m, not "59s"`},
		{"repeat zero", minimal + "alerts:\n  repeat: 0s\n", `t.yaml:5: alerts.repeat: want a duration of at least 1m, like 4h or 30m, not "0s"`},
		// the file as a whole
		{"empty", "", `config t.yaml: empty file: want at least a node: section`},
		{"only comments", "# node:\n\n", `config t.yaml: empty file: want at least a node: section`},
		{"syntax", "node:\n  name: web1\n state_dir: /s\n", `t.yaml:2: YAML: did not find expected key`},
		{"two documents", minimal + "---\nnode: {}\n", `t.yaml:4: more than one YAML document (a second --- line)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), "t.yaml")
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want error %q", c, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\ngot  %s\nwant %s", got, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error is a %T, want *config.Error", err)
			}
		})
	}
}

func TestErrorFields(t *testing.T) {
	_, err := Parse([]byte(minimal+"peers:\n  - {name: web2, id: "+idX+", address: 'h'}\n"), "t.yaml")
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a *config.Error", err)
	}
	if got, want := *ce, (Error{File: "t.yaml", Line: 5, Key: "peers[0].address"}); got.File != want.File || got.Line != want.Line || got.Key != want.Key {
		t.Errorf("got File %q Line %d Key %q, want %q %d %q", got.File, got.Line, got.Key, want.File, want.Line, want.Key)
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.yaml")
	_, err := Load(missing)
	if got, want := err.Error(), "config "+missing+": no such file"; got != want {
		t.Errorf("missing file: got %q, want %q", got, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v does not match fs.ErrNotExist", err)
	}
	_, err = Load(dir)
	if got, want := err.Error(), "config "+dir+": is a directory"; got != want {
		t.Errorf("directory: got %q, want %q", got, want)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(minimal+"  bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if got, want := err.Error(), bad+`:4: unknown key "bogus" in node`; got != want {
		t.Errorf("bad file: got %q, want %q", got, want)
	}
}

// syncd id reads a config whose peers are not known yet.
func TestLoadNode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "syncd.yaml")
	os.WriteFile(p, []byte("node: {name: web1, state_dir: /var/lib/syncd}\npeers:\n  - {name: web2, id: <to fill in>, address: 'h:1'}\n"), 0o600)
	c, err := LoadNode(p)
	if err != nil || c.Node.StateDir != "/var/lib/syncd" {
		t.Fatalf("LoadNode: %+v, %v", c, err)
	}
	if _, err := Load(p); err == nil {
		t.Error("Load took the placeholder ID")
	}
	os.WriteFile(p, []byte("node: {name: web1, state_dri: /x}\n"), 0o600)
	if _, err := LoadNode(p); err == nil || !strings.Contains(err.Error(), "state_dri") {
		t.Errorf("unknown key: %v", err)
	}
}

// A folder path that is a symlink is compared as it resolves: a link to
// another folder, or into the state directory, is refused like the path
// itself.
func TestSymlinkedFolderPaths(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "www")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "html")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	cfg := func(folders string) string {
		return "node:\n  name: web1\n  state_dir: " + state + "\nfolders:\n" + folders
	}
	tests := []struct{ name, yaml, want string }{
		{"link to another folder", cfg("  - {id: a, path: " + real + "}\n  - {id: b, path: " + link + "}\n"),
			"t.yaml:6: folders[1].path: " + link + " (resolves to " + real + ") is also the path of folder \"a\" (line 5)"},
		{"link below another folder", cfg("  - {id: a, path: " + real + "}\n  - {id: b, path: " + link + "/up}\n"),
			"t.yaml:6: folders[1].path: " + link + "/up (resolves to " + real + "/up) is inside the path of folder \"a\", " + real + " (line 5)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "t.yaml")
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error:\ngot  %v\nwant %s", err, tt.want)
			}
		})
	}
	if got := Resolve(link + "/not/yet"); got != real+"/not/yet" {
		t.Errorf("Resolve of a path not there yet = %s, want %s", got, real+"/not/yet")
	}
}
