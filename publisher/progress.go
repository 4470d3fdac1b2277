package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress reports a batch's results: a progress bar on a terminal, a plain
// line every few seconds elsewhere (files and CI logs get no carriage
// returns or escape codes), nothing with "never".
type progress struct {
	bar   *progressbar.ProgressBar
	what  string    // what is counted
	plain io.Writer // nil unless plain lines
	every time.Duration

	mu         sync.Mutex
	n, total   int
	start, got time.Time
}

// newProgress chooses by mode: auto (a bar only when w is a terminal),
// always or never.
func newProgress(mode string, w *os.File, total, done int) *progress {
	return newLabelledProgress("results", mode, w, total, done)
}

// newLabelledProgress is newProgress counting something other than results.
func newLabelledProgress(what, mode string, w *os.File, total, done int) *progress {
	p := &progress{what: what, n: done, total: total, start: time.Now(), every: 5 * time.Second}
	tty := term.IsTerminal(int(w.Fd()))
	switch {
	case mode == "never":
	case mode == "always" || (mode == "auto" && tty):
		p.bar = progressbar.NewOptions64(int64(total), progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(what),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString(what),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
		if done > 0 {
			_ = p.bar.Set(done)
		}
	default:
		p.plain = w
	}
	p.got = p.start
	return p
}

// add counts one result.
func (p *progress) add() {
	if p.bar != nil {
		_ = p.bar.Add(1)
		return
	}
	if p.plain == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if now := time.Now(); now.Sub(p.got) >= p.every {
		p.got = now
		p.line()
	}
}

func (p *progress) line() {
	el := time.Since(p.start)
	fmt.Fprintf(p.plain, "%s: %d of %d (%.0f/s, %s)\n", p.what, p.n, p.total, float64(p.n)/max(el.Seconds(), 1e-3), el.Round(time.Second))
}

// finish ends the bar, or prints the last plain line.
func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		return
	}
	if p.plain != nil {
		p.mu.Lock()
		p.line()
		p.mu.Unlock()
	}
}
