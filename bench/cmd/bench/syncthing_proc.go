package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// stInstance is one `syncthing serve` of the syncthing section: its own
// home directory (configuration, keys, database and log), its REST API on
// a loopback port with an API key, configured only through that API.
type stInstance struct {
	name, home string
	gui        string // 127.0.0.1:PORT of the GUI and REST API
	listen     string // 127.0.0.1:PORT of its sync protocol listener
	apiKey     string
	id         string // device ID, known once started
	logPath    string

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	rusage  *syscall.Rusage
	client  *http.Client
}

// newSTInstance makes the instance's home directory and picks its ports
// and API key; start runs it.
func newSTInstance(name, home string) (*stInstance, error) {
	st := &stInstance{name: name, home: home, logPath: filepath.Join(home, "syncthing.log"),
		apiKey: randomHex(16), client: &http.Client{Timeout: 10 * time.Second}}
	var err error
	if st.gui, err = freeAddr(); err != nil {
		return nil, err
	}
	if st.listen, err = freeAddr(); err != nil {
		return nil, err
	}
	return st, os.MkdirAll(home, 0o700)
}

// start runs `syncthing serve` (no browser, no restarts, no upgrades, no
// default folder) and waits until its REST API answers, then reads its
// device ID. STMONITORED=1 runs Syncthing's own process without the
// monitor process it otherwise starts first (which only restarts it and
// copies its output), so that the process the runner starts, stops and
// measures (CPU time, peak RSS) is the one that syncs.
func (st *stInstance) start(ctx context.Context, rn *runner, bin string) error {
	logf, err := os.OpenFile(st.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "--home", st.home, "--no-browser", "--no-restart", "--no-upgrade",
		"--no-default-folder", "--gui-address="+st.gui, "--gui-apikey="+st.apiKey)
	cmd.Env = append(slices.Clone(rn.env), "STMONITORED=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childSysProcAttr(true)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start syncthing %s: %v", st.name, err)
	}
	fmt.Fprintf(rn.log, "$ STMONITORED=1 %s &  (syncthing %s, pid %d, log %s)\n", strings.Join(cmd.Args, " "), st.name, cmd.Process.Pid, st.logPath)
	st.cmd, st.done = cmd, make(chan struct{})
	go func() {
		st.waitErr = cmd.Wait()
		if ps := cmd.ProcessState; ps != nil {
			if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
				st.rusage = ru
			}
		}
		close(st.done)
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if err := st.alive(); err != nil {
			return err
		}
		var ping struct{ Ping string }
		if err := st.get(ctx, "/rest/system/ping", &ping); err == nil && ping.Ping == "pong" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("syncthing %s: REST API not up after 2 min: %s", st.name, logTail(st.logPath))
		}
		if err := sleepCtx(ctx, pollEvery); err != nil {
			return err
		}
	}
	var sys struct {
		MyID string `json:"myID"`
	}
	if err := st.get(ctx, "/rest/system/status", &sys); err != nil {
		return err
	}
	if sys.MyID == "" {
		return fmt.Errorf("syncthing %s: /rest/system/status has no myID", st.name)
	}
	st.id = sys.MyID
	return nil
}

// alive reports an error if the instance has exited.
func (st *stInstance) alive() error {
	select {
	case <-st.done:
		return fmt.Errorf("syncthing %s exited during the run (%v): %s", st.name, st.waitErr, logTail(st.logPath))
	default:
		return nil
	}
}

// cpu is the instance's CPU time so far (-1 when unknown).
func (st *stInstance) cpu() time.Duration {
	if st.cmd == nil {
		return -1
	}
	return procCPU(st.cmd.Process.Pid)
}

// restart stops the instance and starts it again, with the configuration
// it saved: setLowPriority is applied only when Syncthing starts.
func (st *stInstance) restart(ctx context.Context, rn *runner, bin string) error {
	st.stop()
	return st.start(ctx, rn, bin)
}

// stop ends the instance (SIGTERM, which Syncthing handles as a clean
// shutdown; SIGKILL after 30 s) and logs its peak RSS and CPU time.
func (st *stInstance) stop() {
	if st.cmd == nil {
		return
	}
	if !terminate(st.cmd.Process, st.done, 30*time.Second) {
		progress("syncthing %s did not stop within 30 s of SIGTERM (killed)", st.name)
	}
	if ru := st.rusage; ru != nil {
		progress("syncthing %s: peak RSS %s, cpu %.2f s over the pair", st.name, iec(ru.Maxrss*1024),
			time.Duration(syscall.TimevalToNsec(ru.Utime)+syscall.TimevalToNsec(ru.Stime)).Seconds())
	}
	st.cmd = nil
}

// do sends one REST request with the API key; a body in (non-nil) is sent
// as JSON, and a JSON answer is decoded into out (non-nil).
func (st *stInstance) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+st.gui+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("X-API-Key", st.apiKey)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := st.client.Do(req)
	if err != nil {
		return fmt.Errorf("syncthing %s: %s %s: %v", st.name, method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("syncthing %s: %s %s: %v", st.name, method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("syncthing %s: %s %s: %s: %s", st.name, method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("syncthing %s: %s %s: %v", st.name, method, path, err)
		}
	}
	return nil
}

func (st *stInstance) get(ctx context.Context, path string, out any) error {
	return st.do(ctx, "GET", path, nil, out)
}

// configure reads the instance's configuration and its defaults for a new
// device and folder from /rest/config, applies stConfig and writes the
// result back with PUT /rest/config. Syncthing applies every change the
// section makes without a restart; configure checks that it says so.
func (st *stInstance) configure(ctx context.Context, rn *runner, devs []stDevice, folders []stFolder) error {
	var doc, devDefault, folderDefault map[string]any
	if err := st.get(ctx, "/rest/config", &doc); err != nil {
		return err
	}
	if err := st.get(ctx, "/rest/config/defaults/device", &devDefault); err != nil {
		return err
	}
	if err := st.get(ctx, "/rest/config/defaults/folder", &folderDefault); err != nil {
		return err
	}
	next, err := stConfig(doc, stOptions(st.listen), devDefault, folderDefault, devs, folders)
	if err != nil {
		return fmt.Errorf("syncthing %s: %v", st.name, err)
	}
	fmt.Fprintf(rn.log, "# PUT /rest/config to syncthing %s: options %v, devices %+v, folders %+v\n", st.name, stOptions(st.listen), devs, folders)
	if err := st.do(ctx, "PUT", "/rest/config", next, nil); err != nil {
		return err
	}
	var rr struct {
		RequiresRestart bool `json:"requiresRestart"`
	}
	if err := st.get(ctx, "/rest/config/restart-required", &rr); err != nil {
		return err
	}
	if rr.RequiresRestart {
		return fmt.Errorf("syncthing %s: the configuration asks for a restart", st.name)
	}
	return nil
}

// stOptions are the options the section changes, each only as far as the
// measurement needs: listen on one loopback TCP port; no global or local
// discovery, relays, NAT traversal, usage reporting, crash reporting,
// upgrades or browser; and normal CPU priority (setLowPriority defaults to
// true, which on a shared machine would hand Syncthing's CPU time to
// other processes while ours runs at normal priority).
func stOptions(listen string) map[string]any {
	return map[string]any{
		"listenAddresses":       []any{"tcp://" + listen},
		"globalAnnounceEnabled": false,
		"localAnnounceEnabled":  false,
		"relaysEnabled":         false,
		"natEnabled":            false,
		"urAccepted":            -1,
		"crashReportingEnabled": false,
		"autoUpgradeIntervalH":  0,
		"startBrowser":          false,
		"setLowPriority":        false,
	}
}

// stDevice is a remote device to introduce to an instance.
type stDevice struct {
	id, name  string
	addresses []string // "dynamic" or tcp://HOST:PORT
}

// stFolder is a folder to add to an instance, shared with devices (its
// own device ID included).
type stFolder struct {
	id, path, kind string // kind: sendonly, receiveonly, sendreceive
	devices        []string
}

// stConfig returns a copy of the configuration document doc (as GET
// /rest/config gives it) with opts set in its options, and devs and
// folders added, each built on the instance's defaults for a new device
// (devDefault) or folder (folderDefault), so that every setting the
// section does not name keeps Syncthing's default. A device or folder
// with the ID of one already there replaces it. doc is not modified.
func stConfig(doc, opts, devDefault, folderDefault map[string]any, devs []stDevice, folders []stFolder) (map[string]any, error) {
	var out map[string]any
	if err := deepCopy(&out, doc); err != nil {
		return nil, err
	}
	o, ok := out["options"].(map[string]any)
	if !ok {
		return nil, errors.New("configuration has no options object")
	}
	for k, v := range opts {
		if _, ok := o[k]; !ok {
			return nil, fmt.Errorf("configuration has no option %q", k)
		}
		o[k] = v
	}
	for _, d := range devs {
		var m map[string]any
		if err := deepCopy(&m, devDefault); err != nil {
			return nil, err
		}
		m["deviceID"], m["name"], m["addresses"] = d.id, d.name, stringsAny(d.addresses)
		if err := upsert(out, "devices", "deviceID", m); err != nil {
			return nil, err
		}
	}
	for _, f := range folders {
		var m map[string]any
		if err := deepCopy(&m, folderDefault); err != nil {
			return nil, err
		}
		devices := make([]any, 0, len(f.devices))
		for _, id := range f.devices {
			devices = append(devices, map[string]any{"deviceID": id, "introducedBy": "", "encryptionPassword": ""})
		}
		m["id"], m["label"], m["path"], m["type"], m["devices"] = f.id, f.id, f.path, f.kind, devices
		if err := upsert(out, "folders", "id", m); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// upsert puts m into the list doc[list], replacing the element whose key
// equals m's.
func upsert(doc map[string]any, list, key string, m map[string]any) error {
	var l []any
	switch v := doc[list].(type) {
	case nil:
	case []any:
		l = v
	default:
		return fmt.Errorf("configuration: %s is not a list", list)
	}
	for i, e := range l {
		if em, ok := e.(map[string]any); ok && em[key] == m[key] {
			l[i] = m
			doc[list] = l
			return nil
		}
	}
	doc[list] = append(l, m)
	return nil
}

// deepCopy copies the JSON value src into dst.
func deepCopy(dst any, src map[string]any) error {
	if src == nil {
		return errors.New("configuration: missing document")
	}
	b, err := json.Marshal(src)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}

func stringsAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// stSyntheticSize is what Syncthing counts in a folder's bytes for each
// directory and symlink (protocol.SyntheticDirectorySize).
const stSyntheticSize = 128

// stTree is what Syncthing counts of a folder: regular files, directories
// (not the folder's root) and symlinks, and the regular files' bytes.
type stTree struct{ files, dirs, symlinks, bytes int64 }

// stStatus is the part of GET /rest/db/status?folder=ID the section reads.
type stStatus struct {
	State             string           `json:"state"`
	Error             string           `json:"error"`
	Errors            int64            `json:"errors"` // items that failed to sync
	GlobalFiles       int64            `json:"globalFiles"`
	GlobalDirectories int64            `json:"globalDirectories"`
	GlobalSymlinks    int64            `json:"globalSymlinks"`
	GlobalBytes       int64            `json:"globalBytes"`
	LocalFiles        int64            `json:"localFiles"`
	LocalDirectories  int64            `json:"localDirectories"`
	LocalSymlinks     int64            `json:"localSymlinks"`
	LocalBytes        int64            `json:"localBytes"`
	NeedTotalItems    int64            `json:"needTotalItems"`
	NeedBytes         int64            `json:"needBytes"`
	Sequence          int64            `json:"sequence"`
	RemoteSequence    map[string]int64 `json:"remoteSequence"`
}

// global is the folder's global state as an stTree: the bytes less the
// synthetic size Syncthing counts for directories and symlinks.
func (s *stStatus) global() stTree {
	return stTree{s.GlobalFiles, s.GlobalDirectories, s.GlobalSymlinks,
		s.GlobalBytes - stSyntheticSize*(s.GlobalDirectories+s.GlobalSymlinks)}
}

// local is the folder's local state as an stTree.
func (s *stStatus) local() stTree {
	return stTree{s.LocalFiles, s.LocalDirectories, s.LocalSymlinks,
		s.LocalBytes - stSyntheticSize*(s.LocalDirectories+s.LocalSymlinks)}
}

// folderStatus fetches GET /rest/db/status for folder.
func (st *stInstance) folderStatus(ctx context.Context, folder string) (*stStatus, error) {
	var s stStatus
	if err := st.get(ctx, "/rest/db/status?folder="+folder, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// stScanned reports whether the source's folder is scanned and its index
// holds want, and if not, why not.
func stScanned(src *stStatus, want stTree) (bool, string) {
	switch {
	case src.Error != "":
		return false, "source folder error: " + src.Error
	case src.State != "idle":
		return false, "source " + src.State
	case src.global() != want || src.local() != want:
		return false, fmt.Sprintf("source indexed %+v (global %+v) of %+v", src.local(), src.global(), want)
	}
	return true, ""
}

// stReceived reports whether the receiver's own status says it has
// everything it knows of (idle, nothing needed, local equal to global),
// and if not, why not; stDone adds what only the source can tell.
func stReceived(dst *stStatus) (bool, string) {
	switch {
	case dst.Error != "":
		return false, "receiver folder error: " + dst.Error
	case dst.State != "idle":
		return false, fmt.Sprintf("receiver %s, needs %d items %d bytes, %d errors", dst.State, dst.NeedTotalItems, dst.NeedBytes, dst.Errors)
	case dst.NeedTotalItems != 0 || dst.NeedBytes != 0:
		return false, fmt.Sprintf("receiver idle but needs %d items %d bytes, %d errors", dst.NeedTotalItems, dst.NeedBytes, dst.Errors)
	case dst.local() != dst.global():
		return false, fmt.Sprintf("receiver has %+v of global %+v", dst.local(), dst.global())
	}
	return true, ""
}

// stDone reports whether the replica is complete: the source (device
// srcID) has scanned the tree, whose counts are want, the receiver has
// the source's whole index (its remote sequence for srcID equals the
// source's sequence), needs nothing, and holds what the source holds.
func stDone(src, dst *stStatus, srcID string, want stTree) (bool, string) {
	if ok, why := stScanned(src, want); !ok {
		return false, why
	}
	if ok, why := stReceived(dst); !ok {
		return false, why
	}
	if seq := dst.RemoteSequence[srcID]; seq != src.Sequence {
		return false, fmt.Sprintf("receiver has the source's index up to sequence %d of %d", seq, src.Sequence)
	}
	if dst.global() != src.global() {
		return false, fmt.Sprintf("receiver's global %+v, source's %+v", dst.global(), src.global())
	}
	return true, ""
}

// stFirstApplied reports whether the receiver, by its own status done
// with what it knows of (stReceived), has applied an index of the source
// newer than seq0 in full: the source idle, and the receiver's remote
// sequence for srcID equal to the source's sequence, above seq0.
func stFirstApplied(src, dst *stStatus, srcID string, seq0 int64) bool {
	ok, _ := stReceived(dst)
	return ok && src.State == "idle" && src.Sequence > seq0 && dst.RemoteSequence[srcID] == src.Sequence
}

// stInternal are the names at a folder's root that Syncthing keeps for
// itself and never syncs.
var stInternal = []string{".stfolder", ".stignore", ".stversions"}

// countSTTree counts dir as Syncthing does (see stTree), leaving out its
// own entries at the root.
func countSTTree(dir string) (stTree, error) {
	var t stTree
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		if filepath.Dir(p) == dir && slices.Contains(stInternal, e.Name()) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case e.IsDir():
			t.dirs++
		case e.Type()&fs.ModeSymlink != 0:
			t.symlinks++
		case e.Type().IsRegular():
			fi, err := e.Info()
			if err != nil {
				return err
			}
			t.files++
			t.bytes += fi.Size()
		}
		return nil
	})
	return t, err
}

// withoutSTInternal drops from compareMirror's problems those about
// Syncthing's own entries at a folder's root (stInternal: its marker
// directory .stfolder holds a file of its own on each side, never
// synced), which are not part of the mirrored tree.
func withoutSTInternal(problems []string) []string {
	var out []string
	for _, pr := range problems {
		p := pr
		for _, prefix := range []string{"missing: ", "extra: "} {
			p = strings.TrimPrefix(p, prefix)
		}
		first, _, _ := strings.Cut(p, "/")
		first, _, _ = strings.Cut(first, ":")
		if !slices.Contains(stInternal, first) {
			out = append(out, pr)
		}
	}
	return out
}
