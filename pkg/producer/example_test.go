package producer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/hybridscore/hybridscore/internal/config"
	"github.com/hybridscore/hybridscore/internal/natsembed"
	"github.com/hybridscore/hybridscore/internal/server"
	"github.com/hybridscore/hybridscore/pkg/job"
	"github.com/hybridscore/hybridscore/pkg/producer"
)

// Submit publishes one job and waits for its result. Here the NATS server
// and the worker run in this process; in production, connect to your NATS
// servers and let the worker pool do the rest.
func ExampleClient_Submit() {
	dir, _ := os.MkdirTemp("", "producer-example-")
	defer os.RemoveAll(dir)
	ns, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ns.Stop()
	cfg := config.Defaults()
	cfg.NATSURL, cfg.HTTPAddr = ns.URL(), "127.0.0.1:0"
	ctx, stopWorker := context.WithCancel(context.Background())
	worker, err := server.New(ctx, cfg, zap.NewNop())
	if err != nil {
		stopWorker()
		fmt.Println(err)
		return
	}
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx) }()
	defer func() { stopWorker(); <-done }()

	nc, err := nats.Connect(ns.URL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	client, err := producer.NewClient(nc)
	if err != nil {
		fmt.Println(err)
		return
	}
	raw, err := client.Submit(context.Background(), "default", job.Wire{
		JobID:                 "example-1",
		TaskDescription:       "Implement OAuth2 authentication with JWT tokens",
		HistoricalPatternText: "Build user authentication using OAuth2 protocol",
		VectorSimilarity:      0.85,
	}, 30*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	var r job.Result
	_ = json.Unmarshal(raw, &r)
	fmt.Println(r.JobID, r.Status, r.UsedPatterns, *r.VectorWeight, *r.PatternWeight)
	// Output: example-1 scored true 0.7 0.3
}

// A Source reads jobs from JSONL or CSV, one at a time, for Batch.
func ExampleNewSource() {
	csv := "task_description,historical_pattern_text,vector_similarity,complexity\n" +
		"Add login with OAuth2,Implement user authentication,0.71,simple\n" +
		"Create integration tests,Write unit tests for service,0.64,\n"
	src, err := producer.NewSource(strings.NewReader(csv), "csv")
	if err != nil {
		fmt.Println(err)
		return
	}
	for {
		w, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s | %s | %.2f | %v\n", w.TaskDescription, w.HistoricalPatternText, w.VectorSimilarity, w.TaskCharacteristics != nil)
	}
	// Output:
	// Add login with OAuth2 | Implement user authentication | 0.71 | true
	// Create integration tests | Write unit tests for service | 0.64 | false
}
