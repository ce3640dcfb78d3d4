package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/syncd/syncd/internal/miniotest"
)

// promEvery is the scrape and rule evaluation interval of the test's
// Prometheus.
const promEvery = time.Second

// prom is a Prometheus server started by a test.
type prom struct {
	t    *testing.T
	addr string // host:port of its HTTP API
	logf string
}

// startProm runs the prometheus binary (Debian package prometheus) on a
// free 127.0.0.1 port with a data directory of its own, scraping targets
// as job "syncd" and evaluating the shipped rules every promEvery, and
// waits until it is ready. It is killed when the test ends.
func startProm(t *testing.T, targets ...string) *prom {
	t.Helper()
	bin := tool(t, "prometheus")
	rules, err := filepath.Abs(filepath.Join(rulesDir, "syncd-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tj, _ := json.Marshal(targets) // a YAML flow sequence
	cfg := fmt.Sprintf(`global: {scrape_interval: %[1]s, scrape_timeout: %[1]s, evaluation_interval: %[1]s}
rule_files: [%[2]q]
scrape_configs:
  - job_name: syncd
    static_configs: [{targets: %[3]s}]
`, promEvery, rules, tj)
	cfgf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &prom{t: t, addr: miniotest.FreeAddr(t), logf: filepath.Join(dir, "prometheus.log")}
	logf, err := os.Create(p.logf)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "--config.file="+cfgf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+p.addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if !waitFor(30*time.Second, func() bool {
		resp, err := http.Get("http://" + p.addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		t.Fatalf("prometheus not ready within 30s; log:\n%s", p.log())
	}
	return p
}

func (p *prom) log() string {
	b, _ := os.ReadFile(p.logf)
	return string(b)
}

// api GETs path from the HTTP API and decodes its data into v.
func (p *prom) api(path string, v any) error {
	resp, err := http.Get("http://" + p.addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("GET %s: %s: %v", path, resp.Status, err)
	}
	if r.Status != "success" {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, r.Error)
	}
	return json.Unmarshal(r.Data, v)
}

// sample is one element of an instant vector.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"` // [unix time, "value"]
}

// query evaluates q now and returns its one sample's value; ok is false
// when q has no sample. More than one sample fails the test.
func (p *prom) query(q string) (v float64, ok bool, err error) {
	var d struct {
		Result []sample `json:"result"`
	}
	if err := p.api("/api/v1/query?query="+url.QueryEscape(q), &d); err != nil {
		return 0, false, err
	}
	switch len(d.Result) {
	case 0:
		return 0, false, nil
	case 1:
	default:
		p.t.Fatalf("%s: %d samples, want 1: %v", q, len(d.Result), d.Result)
	}
	v, _, err = point(d.Result[0].Value)
	return v, true, err
}

// scraped returns the samples of the series sel scraped within the last
// d, in order, with the times of their scrapes.
func (p *prom) scraped(sel string, d time.Duration) (vs []float64, ats []time.Time, err error) {
	var r struct {
		Result []struct {
			Values [][2]any `json:"values"`
		} `json:"result"`
	}
	q := fmt.Sprintf("%s[%dms]", sel, d.Milliseconds())
	if err := p.api("/api/v1/query?query="+url.QueryEscape(q), &r); err != nil {
		return nil, nil, err
	}
	if len(r.Result) != 1 {
		return nil, nil, fmt.Errorf("%s: %d series, want 1", q, len(r.Result))
	}
	for _, pt := range r.Result[0].Values {
		v, at, err := point(pt)
		if err != nil {
			return nil, nil, err
		}
		vs, ats = append(vs, v), append(ats, at)
	}
	return vs, ats, nil
}

// point decodes a [unix time, "value"] pair of the API.
func point(pt [2]any) (float64, time.Time, error) {
	ts, _ := pt[0].(float64)
	s, _ := pt[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, time.UnixMicro(int64(ts * 1e6)), err
}

// alert is an alert of /api/v1/alerts.
type alert struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"` // pending or firing
	ActiveAt time.Time         `json:"activeAt"`
}

// alert returns the active alert named name whose labels include those of
// match, and whether there is one.
func (p *prom) alert(name string, match map[string]string) (alert, bool, error) {
	var d struct {
		Alerts []alert `json:"alerts"`
	}
	if err := p.api("/api/v1/alerts", &d); err != nil {
		return alert{}, false, err
	}
next:
	for _, a := range d.Alerts {
		if a.Labels["alertname"] != name {
			continue
		}
		for k, v := range match {
			if a.Labels[k] != v {
				continue next
			}
		}
		return a, true, nil
	}
	return alert{}, false, nil
}

// TestPrometheusPeerDown: a real Prometheus scrapes two mirroring nodes
// every second with the shipped rules. After kill -9 of b, a's
// syncd_peer_connected for b reads 0 within two scrapes and SyncdPeerDown
// (and SyncdNodeDown for b) is pending, the shipped `for:` of a minute
// not over yet; after b restarts it reads 1 again and the alert is gone.
func TestPrometheusPeerDown(t *testing.T) {
	ns := mesh(t, "send-receive", "a", "b")
	a, b := ns[0], ns[1]
	a.start()
	b.start()
	p := startProm(t, a.http, b.http)

	connected := fmt.Sprintf(`syncd_peer_connected{job="syncd",instance=%q,folder="data",peer="b"}`, a.http)
	// waitConnected polls until Prometheus reads connected as want.
	waitConnected := func(want float64, within time.Duration) {
		t.Helper()
		var v float64
		var have bool
		var err error
		if !waitFor(within, func() bool {
			v, have, err = p.query(connected)
			return err == nil && have && v == want
		}) {
			t.Fatalf("%s = %v (sample %v, err %v), want %v within %v\nlog of a:\n%s\nprometheus:\n%s",
				connected, v, have, err, want, within, a.logTail(), p.log())
		}
	}
	waitConnected(1, 30*time.Second)

	killed := time.Now()
	b.stop(true)
	waitConnected(0, 15*time.Second)
	seen := time.Since(killed)
	// the first scrape after the kill that read 0, by its own time
	vs, ats, err := p.scraped(connected, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	first, scrapes := time.Duration(-1), 0
	for i, v := range vs {
		if ats[i].After(killed) {
			scrapes++
			if v == 0 {
				first = ats[i].Sub(killed)
				break
			}
		}
	}
	t.Logf("kill -9 of b: a's syncd_peer_connected read 0 by the scrape %v after it (scrape %d after it), through the API %v after it",
		first.Round(time.Millisecond), scrapes, seen.Round(time.Millisecond))
	if first < 0 || scrapes > 2 || first > 2*promEvery+promEvery/4 {
		t.Errorf("syncd_peer_connected read 0 by scrape %d after the kill, %v after it; want by the second, within two scrape intervals\n%v\n%v",
			scrapes, first, vs, ats)
	}

	for _, w := range []struct {
		name  string
		match map[string]string
	}{
		{"SyncdPeerDown", map[string]string{"instance": a.http, "peer": "b", "severity": "critical"}},
		{"SyncdNodeDown", map[string]string{"instance": b.http, "severity": "critical"}},
	} {
		var al alert
		var have bool
		var err error
		// a rule evaluation after the scrape, and one more for slack
		if !waitFor(3*promEvery, func() bool {
			al, have, err = p.alert(w.name, w.match)
			return err == nil && have
		}) {
			t.Fatalf("%s%v not active within %v of the 0 (err %v)", w.name, w.match, 3*promEvery, err)
		}
		if al.State != "pending" {
			t.Errorf("%s is %s %v after the kill, want pending: its for: is 1m", w.name, al.State, time.Since(killed))
		}
	}

	b.start()
	waitConnected(1, 30*time.Second)
	if !waitFor(3*promEvery, func() bool {
		_, have, err := p.alert("SyncdPeerDown", map[string]string{"instance": a.http, "peer": "b"})
		return err == nil && !have
	}) {
		t.Errorf("SyncdPeerDown still active after b came back")
	}
}
