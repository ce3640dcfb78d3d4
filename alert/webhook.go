package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Stats are the delivery counters of one webhook, for metrics.
type Stats struct {
	// Webhook names the webhook by scheme and host, like
	// "https://hooks.example": its path and query may hold a secret.
	Webhook  string
	Sent     uint64 // messages delivered (a 2xx answer)
	Failed   uint64 // tries that failed and are retried: network errors, timeouts, 408, 429, 5xx
	Rejected uint64 // messages refused with another status (3xx, 4xx), not retried
	Dropped  uint64 // messages dropped, oldest first, because the queue was full
	Queued   int    // messages waiting, not counting the one being delivered
}

// remindEvery is how often a webhook that keeps failing is logged again.
const remindEvery = 10 * time.Minute

// maxTokenFile bounds the token file read: a token is a line.
const maxTokenFile = 64 << 10

// webhook is one receiver's queue and sender.
type webhook struct {
	url, name string
	token     string
	timeout   time.Duration
	client    *http.Client
	clock     Clock
	log       *slog.Logger
	size      int
	minB      time.Duration
	maxB      time.Duration
	notify    chan struct{} // a message was queued

	mu       sync.Mutex
	queue    [][]byte
	dropping bool // the first drop of this overflow was logged
	st       Stats

	// The failing streak, touched by the sender goroutine only.
	failing     bool
	failedSince time.Time
	failures    int
	lastLog     time.Time
}

func newWebhook(w Webhook, client *http.Client, size int, minB, maxB time.Duration, clock Clock, log *slog.Logger) (*webhook, error) {
	u, err := url.Parse(w.URL)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, errors.New("want an http:// or https:// URL with a host")
	}
	h := &webhook{
		url: w.URL, name: u.Scheme + "://" + u.Host,
		timeout: or(w.Timeout, DefaultTimeout),
		client:  client, clock: clock, size: size, minB: minB, maxB: maxB,
		notify: make(chan struct{}, 1),
	}
	h.log = log.With("webhook", h.name)
	h.st.Webhook = h.name
	if w.TokenFile != "" {
		if h.token, err = readToken(w.TokenFile); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// newClient returns the HTTP client of the webhooks. It follows no
// redirect: a POST redirected is a webhook URL to fix, and the token must
// not go to another place.
func newClient() *http.Client {
	return &http.Client{
		Transport: http.DefaultTransport.(*http.Transport).Clone(),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// readToken reads a bearer token file, refusing one that group or others
// can read, like the key files of package crypto.
func readToken(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("token file %s does not exist", path)
		}
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	if fi.IsDir() {
		return "", fmt.Errorf("token file %s is a directory", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("token file %s is accessible by others (mode %04o); run: chmod 600 %s", path, perm, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	if len(data) > maxTokenFile {
		return "", fmt.Errorf("token file %s is larger than %d KiB; want one line", path, maxTokenFile>>10)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] > '~' {
			return "", fmt.Errorf("token file %s: want one line of printable ASCII without spaces", path)
		}
	}
	return tok, nil
}

// enqueue adds body to the queue, dropping the oldest message when it is
// full. It never blocks.
func (h *webhook) enqueue(body []byte) {
	h.mu.Lock()
	first := false
	if len(h.queue) >= h.size {
		copy(h.queue, h.queue[1:])
		h.queue = h.queue[:len(h.queue)-1]
		h.st.Dropped++
		first, h.dropping = !h.dropping, true
	}
	h.queue = append(h.queue, body)
	h.mu.Unlock()
	if first {
		h.log.Warn("alert queue full: dropping the oldest messages", "size", h.size)
	}
	select {
	case h.notify <- struct{}{}:
	default:
	}
}

// next takes the oldest queued message.
func (h *webhook) next() ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.queue) == 0 {
		h.dropping = false
		return nil, false
	}
	body := h.queue[0]
	h.queue[0] = nil
	h.queue = h.queue[1:]
	return body, true
}

func (h *webhook) stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.st
	s.Queued = len(h.queue)
	return s
}

func (h *webhook) count(f func(*Stats)) {
	h.mu.Lock()
	f(&h.st)
	h.mu.Unlock()
}

// run delivers queued messages, one at a time and in order, until ctx
// ends.
func (h *webhook) run(ctx context.Context) {
	for {
		body, ok := h.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-h.notify:
				continue
			}
		}
		if !h.deliver(ctx, body) {
			return
		}
	}
}

// deliver sends body until the webhook takes it or refuses it; it returns
// false when ctx ended first.
func (h *webhook) deliver(ctx context.Context, body []byte) bool {
	backoff := h.minB
	for {
		status, err := h.post(ctx, body)
		if ctx.Err() != nil {
			return false
		}
		switch {
		case err == nil && status >= 200 && status <= 299:
			// Logs first, counts after: a caller that sees the count
			// also sees the line.
			h.recovered()
			h.count(func(s *Stats) { s.Sent++ })
			return true
		case err == nil && !retryable(status):
			var m Message
			_ = json.Unmarshal(body, &m) // our own encoding: cannot fail
			h.log.Error("alert webhook refused a message; not retried: check its URL and token",
				"status", status, "alert", m.Alert, "key", m.Key, "alert_status", m.Status)
			h.count(func(s *Stats) { s.Rejected++ })
			return true
		}
		h.failed(err, status, backoff)
		h.count(func(s *Stats) { s.Failed++ })
		t := h.clock.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C():
		}
		backoff = min(2*backoff, h.maxB)
	}
}

// retryable reports whether an answer with status may go better later.
func retryable(status int) bool {
	return status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500
}

// post makes one try; its error never holds the URL, which may hold a
// secret.
func (h *webhook) post(ctx context.Context, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("bad URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "syncd")
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("no answer within %s", h.timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	return resp.StatusCode, nil
}

// failed notes a failed try: the first of a streak is logged, then at
// most one line every remindEvery.
func (h *webhook) failed(err error, status int, retry time.Duration) {
	now := h.clock.Now()
	h.failures++
	reason := fmt.Sprintf("HTTP status %d", status)
	if err != nil {
		reason = err.Error()
	}
	switch {
	case !h.failing:
		h.failing, h.failedSince, h.lastLog = true, now, now
		h.log.Warn("alert webhook failing; retrying with backoff", "err", reason, "retry_in", retry)
	case now.Sub(h.lastLog) >= remindEvery:
		h.lastLog = now
		h.log.Warn("alert webhook still failing", "err", reason, "since", h.failedSince, "tries", h.failures, "retry_in", retry)
	}
}

// recovered ends a failing streak, logging it.
func (h *webhook) recovered() {
	if !h.failing {
		return
	}
	h.log.Info("alert webhook recovered", "failed_tries", h.failures, "down_for", h.clock.Now().Sub(h.failedSince).Round(time.Second))
	h.failing, h.failures = false, 0
}
