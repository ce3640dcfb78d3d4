package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"

	"github.com/syncd/syncd/config"
	"github.com/syncd/syncd/daemon"
)

// notifier tells systemd (Type=notify, the socket at $NOTIFY_SOCKET) how
// syncd run is doing: READY=1 once every folder is scanned or failed,
// WATCHDOG=1 at half of $WATCHDOG_USEC, STOPPING=1 on SIGTERM, and STATUS=
// lines. Without $NOTIFY_SOCKET every method does nothing. Its methods
// are safe for concurrent use.
type notifier struct {
	log      *slog.Logger
	stopping sync.Once
}

// send sends state to systemd; a failure is logged at debug (systemd is
// then not listening, or syncd runs outside it).
func (n *notifier) send(state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		n.log.Debug("systemd notify", "state", state, "err", err)
	}
}

// watchdog sends WATCHDOG=1 every half of $WATCHDOG_USEC until ctx ends;
// it returns at once when systemd asks for no watchdog.
func (n *notifier) watchdog(ctx context.Context) {
	every, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn("systemd watchdog: WATCHDOG_USEC not understood; no pings sent", "err", err)
	}
	if every <= 0 {
		return
	}
	t := time.NewTicker(every / 2)
	defer t.Stop()
	n.send("WATCHDOG=1")
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.send("WATCHDOG=1")
		}
	}
}

// started sends READY=1 and a STATUS line once d has scanned (or failed)
// every folder; it gives up when ctx ends first. After a reload the
// new daemon's READY=1 is a repeat, which systemd ignores.
func (n *notifier) started(ctx context.Context, d *daemon.Daemon, cfg *config.Config) {
	n.send(fmt.Sprintf("STATUS=scanning %d folders", len(cfg.Folders)))
	if d.WaitStarted(ctx) != nil {
		return
	}
	n.send(fmt.Sprintf("READY=1\nSTATUS=running: %d folders, http %s", len(cfg.Folders), cfg.Node.HTTP))
}

// stop sends STOPPING=1, once however often it is called.
func (n *notifier) stop() {
	n.stopping.Do(func() { n.send("STOPPING=1\nSTATUS=stopping") })
}
