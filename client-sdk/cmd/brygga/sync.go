package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/sync/replica"
)

// isTerminal reports whether w, a reader or writer, is a character device
// such as a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar draws a sync's progress on a terminal, one line per phase.
type progressBar struct {
	w     io.Writer
	phase string
	width int
}

// update redraws the bar for p.
func (b *progressBar) update(p brygga.Progress) {
	if b.phase != "" && b.phase != p.Phase {
		fmt.Fprintln(b.w)
	}
	b.phase = p.Phase
	fmt.Fprint(b.w, "\r"+renderBar(p, b.width)+"\x1b[K")
}

// finish ends the last line.
func (b *progressBar) finish() {
	if b.phase != "" {
		fmt.Fprintln(b.w)
		b.phase = ""
	}
}

// renderBar returns one line of progress: the phase, a bar width wide and
// the counts.
func renderBar(p brygga.Progress, width int) string {
	frac := 1.0
	if p.Total > 0 {
		frac = float64(min(max(p.Done, 0), p.Total)) / float64(p.Total)
	}
	n := int(frac*float64(width) + 0.5)
	return fmt.Sprintf("%-4s [%s%s] %d/%d", p.Phase, strings.Repeat("#", n), strings.Repeat(".", width-n), p.Done, p.Total)
}

// syncCounts records what a sync's progress reports said.
type syncCounts struct {
	pushed, pulled int64
}

func (s *syncCounts) observe(p brygga.Progress) {
	switch p.Phase {
	case "push":
		s.pushed = p.Done
	case "pull":
		s.pulled = p.Received
	}
}

// syncResult is what sync prints with --json.
type syncResult struct {
	// Offline is true if the server could not be reached; the rest is
	// then what waits on the device.
	Offline  bool                `json:"offline"`
	Pushed   int64               `json:"pushed"`
	Pulled   int64               `json:"pulled"`
	Pending  int                 `json:"pending"`
	Rejected []replica.Rejection `json:"rejected"` // those of this sync
	LastSync *time.Time          `json:"last_sync"`
}

func (c *cli) sync(args []string) error {
	fs := c.flags("sync")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	var counts syncCounts
	var bar *progressBar
	if !*asJSON && isTerminal(c.stdout) {
		bar = &progressBar{w: c.stdout, width: 30}
	}
	opts := &brygga.Options{OnProgress: func(p brygga.Progress) {
		counts.observe(p)
		if bar != nil {
			bar.update(p)
		}
	}}
	cl, err := c.openEnrolled(opts)
	if err != nil {
		return err
	}
	defer cl.Close()
	before, err := cl.Status(c.ctx)
	if err != nil {
		return err
	}
	syncErr := cl.Sync(c.ctx)
	if bar != nil {
		bar.finish()
	}
	offline := brygga.Unreachable(syncErr)
	if syncErr != nil && !offline {
		return syncErr
	}
	after, err := cl.Status(c.ctx)
	if err != nil {
		return err
	}
	fresh := after.Rejected[:max(len(after.Rejected)-len(before.Rejected), 0)]
	res := syncResult{Offline: offline, Pushed: counts.pushed, Pulled: counts.pulled, Pending: after.Pending,
		Rejected: fresh, LastSync: after.LastSync}
	if *asJSON {
		if err := writeJSON(c.stdout, res); err != nil {
			return err
		}
	} else if !offline {
		fmt.Fprintf(c.stdout, "pushed %d, pulled %d; %d pending, %d rejected\n", res.Pushed, res.Pulled, res.Pending, len(fresh))
		for _, r := range fresh {
			fmt.Fprintf(c.stdout, "  rejected %s %s: %s\n", r.Kind, r.ID, rejection(string(r.Error.Code), r.Error.Field, r.Error.Message))
		}
	}
	if offline {
		return fmt.Errorf("%w: will sync when the server can be reached (%s waiting on this device)", errOffline, plural(after.Pending, "change"))
	}
	return nil
}

// plural returns n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// rejection describes why the server rejected a record.
func rejection(code, field, message string) string {
	if field != "" {
		return fmt.Sprintf("%s (%s): %s", field, code, message)
	}
	return fmt.Sprintf("%s: %s", code, message)
}
