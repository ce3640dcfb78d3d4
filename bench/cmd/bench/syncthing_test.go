package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// stConfigDoc is a trimmed GET /rest/config of a fresh Syncthing v1.30.0
// (--no-default-folder): the local device only, default options.
const stConfigDoc = `{
  "version": 37,
  "folders": [],
  "devices": [
    {"deviceID": "AAA", "name": "vm", "addresses": ["dynamic"], "compression": "metadata", "introducer": false}
  ],
  "gui": {"enabled": true, "address": "127.0.0.1:18384", "apiKey": "k"},
  "options": {
    "listenAddresses": ["default"],
    "globalAnnounceServers": ["default"],
    "globalAnnounceEnabled": true,
    "localAnnounceEnabled": true,
    "reconnectionIntervalS": 60,
    "relaysEnabled": true,
    "startBrowser": true,
    "natEnabled": true,
    "urAccepted": 0,
    "autoUpgradeIntervalH": 12,
    "setLowPriority": true,
    "crashReportingEnabled": true
  },
  "defaults": {"folder": {"id": ""}}
}`

const stDeviceDefault = `{"deviceID": "", "name": "", "addresses": ["dynamic"], "compression": "metadata", "autoAcceptFolders": false, "maxRequestKiB": 0}`

const stFolderDefault = `{"id": "", "label": "", "path": "", "type": "sendreceive",
  "devices": [{"deviceID": "AAA", "introducedBy": "", "encryptionPassword": ""}],
  "rescanIntervalS": 3600, "fsWatcherEnabled": true, "fsWatcherDelayS": 10, "markerName": ".stfolder"}`

func decodeJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSTConfig(t *testing.T) {
	doc := decodeJSON(t, stConfigDoc)
	orig := decodeJSON(t, stConfigDoc)
	got, err := stConfig(doc, stOptions("127.0.0.1:22001"), decodeJSON(t, stDeviceDefault), decodeJSON(t, stFolderDefault),
		[]stDevice{{id: "BBB", name: "st2", addresses: []string{"tcp://127.0.0.1:22002"}}},
		[]stFolder{{id: "data", path: "/src/data", kind: "sendonly", devices: []string{"AAA", "BBB"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(doc, orig) {
		t.Error("stConfig modified its input document")
	}
	// Through JSON, as PUT /rest/config sends it.
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Version int `json:"version"`
		Options map[string]any
		GUI     map[string]any `json:"gui"`
		Devices []map[string]any
		Folders []map[string]any
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	wantOpts := map[string]any{
		"listenAddresses":       []any{"tcp://127.0.0.1:22001"},
		"globalAnnounceServers": []any{"default"}, // kept
		"globalAnnounceEnabled": false,
		"localAnnounceEnabled":  false,
		"reconnectionIntervalS": 60.0, // kept
		"relaysEnabled":         false,
		"startBrowser":          false,
		"natEnabled":            false,
		"urAccepted":            -1.0,
		"autoUpgradeIntervalH":  0.0,
		"setLowPriority":        false,
		"crashReportingEnabled": false,
	}
	if !reflect.DeepEqual(c.Options, wantOpts) {
		t.Errorf("options = %v\nwant %v", c.Options, wantOpts)
	}
	if c.Version != 37 || c.GUI["apiKey"] != "k" || c.GUI["address"] != "127.0.0.1:18384" {
		t.Errorf("version %d, gui %v: want them kept", c.Version, c.GUI)
	}
	if len(c.Devices) != 2 || c.Devices[0]["deviceID"] != "AAA" {
		t.Fatalf("devices = %v, want the local device then BBB", c.Devices)
	}
	wantDev := map[string]any{"deviceID": "BBB", "name": "st2", "addresses": []any{"tcp://127.0.0.1:22002"},
		"compression": "metadata", "autoAcceptFolders": false, "maxRequestKiB": 0.0}
	if !reflect.DeepEqual(c.Devices[1], wantDev) {
		t.Errorf("device = %v\nwant %v", c.Devices[1], wantDev)
	}
	if len(c.Folders) != 1 {
		t.Fatalf("folders = %v, want one", c.Folders)
	}
	f := c.Folders[0]
	for k, v := range map[string]any{"id": "data", "label": "data", "path": "/src/data", "type": "sendonly",
		"rescanIntervalS": 3600.0, "fsWatcherEnabled": true, "fsWatcherDelayS": 10.0, "markerName": ".stfolder"} {
		if !reflect.DeepEqual(f[k], v) {
			t.Errorf("folder %s = %v, want %v", k, f[k], v)
		}
	}
	wantDevs := []any{
		map[string]any{"deviceID": "AAA", "introducedBy": "", "encryptionPassword": ""},
		map[string]any{"deviceID": "BBB", "introducedBy": "", "encryptionPassword": ""},
	}
	if !reflect.DeepEqual(f["devices"], wantDevs) {
		t.Errorf("folder devices = %v, want %v", f["devices"], wantDevs)
	}

	// Configuring again replaces the device and folder, not adds them.
	again, err := stConfig(got, nil, decodeJSON(t, stDeviceDefault), decodeJSON(t, stFolderDefault),
		[]stDevice{{id: "BBB", name: "st2", addresses: []string{"dynamic"}}},
		[]stFolder{{id: "data", path: "/dst", kind: "receiveonly", devices: []string{"AAA"}}})
	if err != nil {
		t.Fatal(err)
	}
	devs, folders := again["devices"].([]any), again["folders"].([]any)
	if len(devs) != 2 || len(folders) != 1 || folders[0].(map[string]any)["type"] != "receiveonly" {
		t.Errorf("reconfigured: %d devices, folders %v; want 2 and the receiveonly one", len(devs), folders)
	}
}

func TestSTConfigErrors(t *testing.T) {
	dev, folder := decodeJSON(t, stDeviceDefault), decodeJSON(t, stFolderDefault)
	if _, err := stConfig(decodeJSON(t, stConfigDoc), map[string]any{"relayEnabled": false}, dev, folder, nil, nil); err == nil ||
		!strings.Contains(err.Error(), "relayEnabled") {
		t.Errorf("a misspelt option: err %v, want one naming it", err)
	}
	if _, err := stConfig(decodeJSON(t, `{"devices": []}`), nil, dev, folder, nil, nil); err == nil {
		t.Error("a document without options: no error")
	}
	if _, err := stConfig(decodeJSON(t, `{"options": {}, "devices": {}}`), nil, dev, folder, []stDevice{{id: "B"}}, nil); err == nil {
		t.Error("devices not a list: no error")
	}
}

// Every option stOptions sets exists in a real configuration document.
func TestSTOptionsKnown(t *testing.T) {
	o := decodeJSON(t, stConfigDoc)["options"].(map[string]any)
	for k := range stOptions("127.0.0.1:1") {
		if _, ok := o[k]; !ok {
			t.Errorf("option %q is not in Syncthing's configuration", k)
		}
	}
}

// stStatusDoc is a GET /rest/db/status of a receive-only folder of
// Syncthing v1.30.0 with everything received (3 files of 100 bytes, 2
// directories, 1 symlink), trimmed.
const stStatusDoc = `{
  "errors": 0, "pullErrors": 0, "invalid": "",
  "globalFiles": 3, "globalDirectories": 2, "globalSymlinks": 1, "globalDeleted": 0, "globalBytes": 684, "globalTotalItems": 6,
  "localFiles": 3, "localDirectories": 2, "localSymlinks": 1, "localDeleted": 0, "localBytes": 684, "localTotalItems": 6,
  "needFiles": 0, "needDirectories": 0, "needSymlinks": 0, "needDeletes": 0, "needBytes": 0, "needTotalItems": 0,
  "receiveOnlyChangedFiles": 0, "inSyncFiles": 3, "inSyncBytes": 684,
  "state": "idle", "stateChanged": "2026-12-02T20:30:00Z", "error": "",
  "version": 9, "sequence": 9, "remoteSequence": {"AAA": 7},
  "ignorePatterns": false, "watchError": ""
}`

func parseSTStatus(t *testing.T, s string) *stStatus {
	t.Helper()
	var st stStatus
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func TestSTStatus(t *testing.T) {
	st := parseSTStatus(t, stStatusDoc)
	want := stTree{files: 3, dirs: 2, symlinks: 1, bytes: 300}
	if st.global() != want || st.local() != want {
		t.Errorf("global %+v, local %+v, want %+v (bytes less 128 per directory and symlink)", st.global(), st.local(), want)
	}
	if st.RemoteSequence["AAA"] != 7 || st.Sequence != 9 || st.State != "idle" {
		t.Errorf("parsed %+v", st)
	}
}

func TestSTDone(t *testing.T) {
	want := stTree{files: 3, dirs: 2, symlinks: 1, bytes: 300}
	src := func() *stStatus {
		s := parseSTStatus(t, stStatusDoc)
		s.Sequence, s.RemoteSequence = 7, nil
		return s
	}
	dst := func() *stStatus { return parseSTStatus(t, stStatusDoc) }
	tests := []struct {
		name   string
		change func(src, dst *stStatus)
		want   stTree
		done   bool
		why    string
	}{
		{"complete", func(src, dst *stStatus) {}, want, true, ""},
		{"source scanning", func(src, dst *stStatus) { src.State = "scanning" }, want, false, "source scanning"},
		{"source has not seen the change", func(src, dst *stStatus) {}, stTree{4, 2, 1, 400}, false, "source indexed"},
		{"same count, other bytes", func(src, dst *stStatus) {}, stTree{3, 2, 1, 301}, false, "source indexed"},
		{"source folder error", func(src, dst *stStatus) { src.Error = "folder path missing" }, want, false, "folder path missing"},
		{"receiver syncing", func(src, dst *stStatus) { dst.State = "syncing" }, want, false, "receiver syncing"},
		{"receiver needs", func(src, dst *stStatus) { dst.NeedTotalItems, dst.NeedBytes = 1, 100 }, want, false, "needs 1 items"},
		{"receiver needs bytes only", func(src, dst *stStatus) { dst.NeedBytes = 5 }, want, false, "needs 0 items 5 bytes"},
		{"receiver local behind", func(src, dst *stStatus) { dst.LocalFiles, dst.LocalBytes = 2, 584 }, want, false, "receiver has"},
		{"receiver index behind", func(src, dst *stStatus) { src.Sequence = 8 }, want, false, "sequence 7 of 8"},
		{"receiver has no index", func(src, dst *stStatus) { dst.RemoteSequence = nil }, want, false, "sequence 0 of 7"},
		{"receiver global differs", func(src, dst *stStatus) {
			dst.GlobalFiles, dst.LocalFiles, dst.GlobalBytes, dst.LocalBytes = 2, 2, 584, 584
		}, want, false, "receiver's global"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, d := src(), dst()
			tt.change(s, d)
			done, why := stDone(s, d, "AAA", tt.want)
			if done != tt.done || !strings.Contains(why, tt.why) {
				t.Errorf("stDone = %v, %q; want %v, containing %q", done, why, tt.done, tt.why)
			}
		})
	}
}

func TestCountSTTree(t *testing.T) {
	dir := t.TempDir()
	for p, content := range map[string]string{
		"a.txt":                "hello",
		"sub/b.txt":            "world!",
		"sub/deep/c":           "",
		".stignore":            "ignored by Syncthing itself",
		".stfolder/x":          "marker content",
		"sub/.stfolder/inside": "12", // only the root's are Syncthing's
	} {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	got, err := countSTTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := stTree{files: 4, dirs: 3, symlinks: 1, bytes: 13}
	if got != want {
		t.Errorf("countSTTree = %+v, want %+v", got, want)
	}
}

func TestWithoutSTInternal(t *testing.T) {
	in := []string{
		".stfolder/syncthing-folder-3a6eb0.txt: mtime 2, want 1",
		"missing: .stfolder/syncthing-folder-3a6eb0.txt",
		"extra: .stversions",
		".stfolder: mode drwx------, want drwxr-xr-x",
		"web/.stfolder/x: content differs", // not at the root: data
		"missing: web/a.txt",
		"extra: .stfolderish",
		"big/db.sql: content differs",
	}
	want := []string{"web/.stfolder/x: content differs", "missing: web/a.txt", "extra: .stfolderish", "big/db.sql: content differs"}
	if got := withoutSTInternal(in); !reflect.DeepEqual(got, want) {
		t.Errorf("withoutSTInternal = %q\nwant %q", got, want)
	}
}

func TestSTFirstApplied(t *testing.T) {
	src := parseSTStatus(t, stStatusDoc)
	src.Sequence = 7
	dst := parseSTStatus(t, stStatusDoc) // remote sequence 7 for AAA
	if !stFirstApplied(src, dst, "AAA", 5) {
		t.Error("index 7 applied after 5: not first applied")
	}
	if stFirstApplied(src, dst, "AAA", 7) {
		t.Error("no index newer than 7: first applied")
	}
	src.State = "scanning"
	if stFirstApplied(src, dst, "AAA", 5) {
		t.Error("source scanning: first applied")
	}
	src.State, dst.State = "idle", "syncing"
	if stFirstApplied(src, dst, "AAA", 5) {
		t.Error("receiver syncing: first applied")
	}
	dst.State, src.Sequence = "idle", 8
	if stFirstApplied(src, dst, "AAA", 5) {
		t.Error("receiver behind the source's index: first applied")
	}
}
