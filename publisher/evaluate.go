package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/evaluate"
	"github.com/hybridscore/hybridscore/internal/langextract"
	"github.com/hybridscore/hybridscore/internal/semcache"
	"github.com/hybridscore/hybridscore/internal/source"
)

type evaluateCmd struct {
	File           string        `arg:"" type:"existingfile" help:"Labelled pairs, JSONL or CSV: task, pattern, vector_similarity, label (0/1 or a grade); optional complexity, feature_label."`
	LangextractURL string        `name:"langextract-url" env:"LANGEXTRACT_URL" help:"Analyse through this langextract service (behind the circuit breaker); empty: the built-in analyzer."`
	Timeout        time.Duration `default:"10s" help:"Per langextract request."`
	RelevantAt     float64       `name:"relevant-at" default:"1" help:"Labels from this value up count as relevant (for graded labels)."`
	K              []int         `name:"k" default:"1,3" help:"Cut-offs of precision@k per task."`
	Out            string        `help:"Write the report as JSON to this file."`
	Plot           string        `help:"Draw the ROC curves to this PNG (or .svg, .pdf) file."`
	JSON           bool          `name:"json" help:"Print the JSON report instead of the table."`
	Progress       string        `enum:"auto,always,never" default:"auto" help:"auto: a progress bar on a terminal, a plain line every 5 s otherwise; always; never."`
}

func (e *evaluateCmd) Run(ctx context.Context) error {
	f, err := os.Open(e.File)
	if err != nil {
		return err
	}
	pairs, err := evaluate.Read(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", e.File, err)
	}

	src, name := source.Builtin, "built-in analyzer"
	if e.LangextractURL != "" {
		client, err := langextract.New(langextract.Config{BaseURL: e.LangextractURL, Timeout: e.Timeout})
		if err != nil {
			return fmt.Errorf("--langextract-url: %w", err)
		}
		src, name = source.Guard(source.NewBreaker(5, 30*time.Second, nil), client), "langextract at "+config.RedactURL(e.LangextractURL)
	}
	// Every text is analysed once, whatever the number of configurations.
	cache, err := semcache.New(ctx, semcache.Config{MaxSize: 2*len(pairs) + 1, TTL: 24 * time.Hour}, source.Loader{Source: src})
	if err != nil {
		return err
	}
	defer cache.Close()

	configs := evaluate.Configs()
	prog := newLabelledProgress("scored", e.Progress, os.Stderr, len(pairs)*len(configs), 0)
	rep, err := evaluate.Run(ctx, cache, pairs, configs, evaluate.Options{RelevantAt: e.RelevantAt, K: e.K, OnScored: prog.add})
	prog.finish()
	if err != nil {
		return err
	}
	rep.Source = name
	if e.Out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(e.Out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if e.Plot != "" {
		if err := evaluate.PlotROC(rep, e.Plot); err != nil {
			return fmt.Errorf("--plot: %w", err)
		}
	}
	if e.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return evaluate.WriteTable(os.Stdout, rep)
}
