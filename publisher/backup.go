package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/hybridscore/hybridscore/internal/backup"
)

// backupCmd saves the project's streams to a directory (internal/backup).
type backupCmd struct {
	natsFlags
	Out      string   `required:"" help:"New directory for the backup (must not exist, or be empty)."`
	Streams  []string `sep:"," help:"Streams to save, comma-separated (SCORING_CLAIMS means its stream KV_SCORING_CLAIMS). Default: SCORING_JOBS, SCORING_BULK, KV_SCORING_CLAIMS, SCORING_RESULTS, SCORING_DLQ, those the server lacks skipped."`
	Progress string   `enum:"auto,always,never" default:"auto" help:"auto: a progress bar on a terminal, a plain line every 5 s otherwise; always; never."`
}

func (b *backupCmd) Run(ctx context.Context) error {
	c, err := b.connect()
	if err != nil {
		return err
	}
	defer c.NC.Close()
	prog := streamProgress{mode: b.Progress, what: "messages saved"}
	res, err := backup.Backup(ctx, c.JS, b.Out, backup.BackupOptions{Streams: b.Streams, Progress: prog.update})
	prog.finish()
	if err != nil {
		return err
	}
	for _, s := range res.Skipped {
		fmt.Printf("%s: not on the server, skipped\n", s)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tMESSAGES\tFIRST SEQ\tLAST SEQ\tBYTES")
	for _, e := range res.Manifest.Streams {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", e.Name, e.Messages, e.FirstSeq, e.LastSeq, e.Bytes)
	}
	_ = tw.Flush()
	fmt.Printf("backup written to %s\n", filepath.Join(b.Out, backup.ManifestFile))
	return nil
}

// restoreCmd recreates streams from a backup directory.
type restoreCmd struct {
	natsFlags
	From        string   `required:"" type:"existingdir" help:"Backup directory (written by publisher backup)."`
	Streams     []string `sep:"," help:"Streams to restore, comma-separated (SCORING_CLAIMS means KV_SCORING_CLAIMS). Default: every stream of the backup."`
	Replace     bool     `help:"Delete and replace existing streams that hold messages. Without it such a stream stops the restore before anything is changed."`
	SkipExpired bool     `name:"skip-expired" help:"Leave out messages older than their stream's max age (the original stream has dropped them by now)."`
	VerifyOnly  bool     `name:"verify-only" help:"Only check the backup's checksums and messages; touch no server."`
	Progress    string   `enum:"auto,always,never" default:"auto" help:"auto: a progress bar on a terminal, a plain line every 5 s otherwise; always; never."`
}

func (r *restoreCmd) Run(ctx context.Context) error {
	if r.VerifyOnly {
		m, err := backup.Verify(r.From, r.Streams)
		if err != nil {
			return err
		}
		for _, e := range m.Streams {
			fmt.Printf("%s: %d messages, checksums match\n", e.Name, e.Messages)
		}
		return nil
	}
	c, err := r.connect()
	if err != nil {
		return err
	}
	defer c.NC.Close()
	prog := streamProgress{mode: r.Progress, what: "messages restored"}
	res, err := backup.Restore(ctx, c.JS, r.From, backup.RestoreOptions{Streams: r.Streams, Replace: r.Replace, SkipExpired: r.SkipExpired, Progress: prog.update})
	prog.finish()
	if res != nil {
		for _, s := range res.Streams {
			printRestored(s)
		}
	}
	if err != nil {
		if errors.Is(err, backup.ErrChecksum) {
			return fmt.Errorf("%w (nothing was restored)", err)
		}
		return err
	}
	fmt.Println("restore complete: every stream holds the messages the manifest counts")
	return nil
}

func printRestored(s backup.StreamReport) {
	var notes []string
	switch {
	case s.ReplacedExisting && s.Replaced > 0:
		notes = append(notes, fmt.Sprintf("replaced a stream of %d messages", s.Replaced))
	case s.ReplacedExisting:
		notes = append(notes, "replaced an empty stream")
	}
	if s.SequencesKept {
		notes = append(notes, "original sequences")
	} else {
		notes = append(notes, "renumbered (the original had gaps, or messages were skipped)")
	}
	if len(s.Consumers) > 0 {
		notes = append(notes, "consumers "+strings.Join(s.Consumers, ", "))
	}
	fmt.Printf("%s: %d messages restored; %s\n", s.Name, s.Restored, strings.Join(notes, "; "))
	if s.Expired > 0 {
		if s.SkippedExpired > 0 {
			fmt.Printf("%s: %d messages older than the max age %s left out\n", s.Name, s.SkippedExpired, s.MaxAge)
		} else {
			fmt.Printf("%s: warning: %d messages are older than the max age %s by their original time; restored now, they are kept another %s (--skip-expired leaves them out)\n",
				s.Name, s.Expired, s.MaxAge, s.MaxAge)
		}
	}
	if s.MovedMsgIDs > 0 {
		fmt.Printf("%s: %d messages repeat an earlier message's Nats-Msg-Id; republished with it in %s so the duplicate window does not drop them\n",
			s.Name, s.MovedMsgIDs, backup.RestoredMsgIDHeader)
	}
}

// streamProgress shows one progress bar or line per stream, in the
// publisher's --progress modes.
type streamProgress struct {
	mode, what string
	stream     string
	done       uint64
	p          *progress
}

func (s *streamProgress) update(p backup.Progress) {
	if p.Stream != s.stream {
		s.finish()
		s.stream, s.done = p.Stream, 0
		s.p = newLabelledProgress(p.Stream+" "+s.what, s.mode, os.Stderr, int(p.Total), 0)
	}
	for ; s.done < p.Done; s.done++ {
		s.p.add()
	}
}

func (s *streamProgress) finish() {
	if s.p != nil {
		s.p.finish()
		s.p = nil
	}
}
